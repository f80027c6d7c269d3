-- A user's own time zone for the pages (an IANA name such as Asia/Seoul); NULL: each
-- environment's times are shown in the environment's zone (its schedule's).
ALTER TABLE users ADD COLUMN time_zone TEXT;
