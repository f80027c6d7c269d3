-- SQLite's 0009 rewrites stored plans of an older shape; PostgreSQL stores came later and never
-- held that shape. Kept so the two back ends' versions stay in step.
SELECT 1;
