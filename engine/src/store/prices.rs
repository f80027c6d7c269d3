//! Prices read from the AWS Price List API, cached for a day.

use super::Conn;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PriceRow {
    pub per_unit: Option<f64>,
    pub currency: String,
    pub source: String,
    pub fetched_at: String,
}

/// The cached price of `key` read at or after `since` (RFC 3339).
pub async fn get(conn: &mut Conn, key: &str, since: &str) -> Result<Option<PriceRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT per_unit, currency, source, fetched_at FROM prices
         WHERE price_key = $1 AND fetched_at >= $2",
    )
    .bind(key)
    .bind(since)
    .fetch_optional(conn)
    .await
}

pub async fn put(conn: &mut Conn, key: &str, row: &PriceRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO prices (price_key, per_unit, currency, source, fetched_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (price_key) DO UPDATE SET per_unit = excluded.per_unit,
             currency = excluded.currency, source = excluded.source,
             fetched_at = excluded.fetched_at",
    )
    .bind(key)
    .bind(super::NullableF64(row.per_unit))
    .bind(&row.currency)
    .bind(&row.source)
    .bind(&row.fetched_at)
    .execute(conn)
    .await?;
    Ok(())
}
