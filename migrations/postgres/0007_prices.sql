-- Prices read from the AWS Price List API, kept for a day.

CREATE TABLE prices (
    price_key  TEXT PRIMARY KEY,
    per_unit   DOUBLE PRECISION,
    currency   TEXT NOT NULL,
    source     TEXT NOT NULL,
    fetched_at TEXT NOT NULL
);
