-- Prices read from the AWS Price List API, kept for a day: one row per thing priced (an
-- instance type, a database class and deployment, a storage type), keyed by its JSON.

CREATE TABLE prices (
    price_key  TEXT PRIMARY KEY,
    -- NULL: the Price List has no single price for it (`source` says why).
    per_unit   REAL,
    currency   TEXT NOT NULL,
    source     TEXT NOT NULL,
    fetched_at TEXT NOT NULL
);
