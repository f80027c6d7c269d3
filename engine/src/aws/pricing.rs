//! The AWS Price List Query API (`pricing:GetProducts`): on-demand prices of EC2 instances (Linux,
//! shared tenancy), RDS instances by engine and deployment option, and RDS storage.
//!
//! The API answers with product documents (JSON in strings). A key's filters are narrow enough
//! that AWS should return one product; the adapter still reads every answer and keeps the
//! products whose on-demand term has one positive price per hour (or per GB-month): one price
//! among them is the answer, several different ones make the key unpriced with the SKUs named,
//! none makes it unpriced. The emulator has no pricing service; the tests serve recorded
//! answers on loopback.

use std::future::Future;

use aws_sdk_pricing::types::{Filter, FilterType};
use aws_sdk_pricing::Client;
use domain::cost::{Price, PriceKey};
use serde_json::Value;

use super::{classify, AwsError, AwsResult};

/// Products read per key at most (pages of 100).
const MAX_PAGES: usize = 5;

pub trait PricingApi: Send + Sync {
    /// Every product document of `service` matching `filters` (field, value), all pages.
    fn products(
        &self,
        service: &str,
        filters: &[(&str, String)],
    ) -> impl Future<Output = AwsResult<Vec<String>>> + Send;
}

#[derive(Debug, Clone)]
pub struct Pricing {
    client: Client,
}

impl Pricing {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            client: Client::from_conf(
                aws_sdk_pricing::config::Builder::from(config)
                    .interceptor(super::calls::CountRequests)
                    .build(),
            ),
        }
    }
}

impl PricingApi for Pricing {
    #[tracing::instrument(name = "aws", level = "debug", skip_all, fields(service = "pricing", action = "GetProducts", resource = %service))]
    async fn products(&self, service: &str, filters: &[(&str, String)]) -> AwsResult<Vec<String>> {
        let what = format!("reading prices of {service}");
        let mut built = Vec::new();
        for (field, value) in filters {
            built.push(
                Filter::builder()
                    .r#type(FilterType::TermMatch)
                    .field(*field)
                    .value(value)
                    .build()
                    .map_err(|e| AwsError::rejected(&what, e.to_string()))?,
            );
        }
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .client
                .get_products()
                .service_code(service)
                .set_filters(Some(built.clone()))
                .format_version("aws_v1")
                .max_results(100)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| classify(&what, "pricing:GetProducts", e))?;
            out.extend(page.price_list().iter().cloned());
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(out)
    }
}

/// The Price List's name of an RDS engine (`mysql` → `MySQL`).
fn engine_name(engine: &str) -> Option<&'static str> {
    Some(match engine.to_ascii_lowercase().as_str() {
        "mysql" => "MySQL",
        "postgres" => "PostgreSQL",
        "mariadb" => "MariaDB",
        "aurora-mysql" => "Aurora MySQL",
        "aurora-postgresql" => "Aurora PostgreSQL",
        _ => return None,
    })
}

/// The Price List's name of an RDS storage type (`gp2` → `General Purpose`).
fn volume_name(storage_type: &str) -> Option<&'static str> {
    Some(match storage_type {
        "gp2" => "General Purpose",
        "gp3" => "General Purpose-GP3",
        "io1" => "Provisioned IOPS",
        "io2" => "Provisioned IOPS-IO2",
        "standard" => "Magnetic",
        _ => return None,
    })
}

fn deployment(multi_az: bool) -> String {
    if multi_az { "Multi-AZ" } else { "Single-AZ" }.to_owned()
}

/// A `GetProducts` question: the service code and the (field, value) filters.
pub type Query = (&'static str, Vec<(&'static str, String)>);

/// The service code and the filters that name `key`'s product; `Err` when the key cannot be
/// asked for.
pub fn query(key: &PriceKey) -> Result<Query, String> {
    Ok(match key {
        PriceKey::Instance {
            region,
            instance_type,
        } => (
            "AmazonEC2",
            vec![
                ("regionCode", region.clone()),
                ("productFamily", "Compute Instance".into()),
                ("instanceType", instance_type.clone()),
                ("operatingSystem", "Linux".into()),
                ("tenancy", "Shared".into()),
                ("preInstalledSw", "NA".into()),
                ("capacitystatus", "Used".into()),
                ("licenseModel", "No License required".into()),
                ("marketoption", "OnDemand".into()),
            ],
        ),
        PriceKey::Database {
            region,
            engine,
            class,
            multi_az,
        } => (
            "AmazonRDS",
            vec![
                ("regionCode", region.clone()),
                ("productFamily", "Database Instance".into()),
                ("instanceType", class.clone()),
                (
                    "databaseEngine",
                    engine_name(engine)
                        .ok_or_else(|| format!("unpriced: the engine `{engine}` is not one tierdeck asks the Price List for"))?
                        .into(),
                ),
                ("deploymentOption", deployment(*multi_az)),
            ],
        ),
        PriceKey::Storage {
            region,
            storage_type,
            multi_az,
        } => (
            "AmazonRDS",
            vec![
                ("regionCode", region.clone()),
                ("productFamily", "Database Storage".into()),
                (
                    "volumeType",
                    volume_name(storage_type)
                        .ok_or_else(|| format!("unpriced: the storage type `{storage_type}` is not one tierdeck asks the Price List for"))?
                        .into(),
                ),
                // Storage products are priced for every engine at once.
                ("databaseEngine", "Any".into()),
                ("deploymentOption", deployment(*multi_az)),
            ],
        ),
    })
}

/// The on-demand price of one product document: its SKU and USD per unit, when it has exactly
/// one positive price in `unit`.
fn on_demand(doc: &Value, unit: &str) -> Option<(String, f64)> {
    let sku = doc.pointer("/product/sku")?.as_str()?.to_owned();
    let terms = doc.pointer("/terms/OnDemand")?.as_object()?;
    let mut prices = terms
        .values()
        .filter_map(|t| t.get("priceDimensions")?.as_object())
        .flat_map(|d| d.values())
        .filter(|d| d.get("unit").and_then(Value::as_str) == Some(unit))
        .filter_map(|d| {
            d.pointer("/pricePerUnit/USD")?
                .as_str()?
                .parse::<f64>()
                .ok()
        })
        .filter(|p| p.is_finite() && *p > 0.0);
    let first = prices.next()?;
    prices.next().is_none().then_some((sku, first))
}

/// Picks `key`'s price among the documents `GetProducts` returned (see the module's docs).
pub fn pick(key: &PriceKey, documents: &[String], as_of: &str) -> Result<Price, String> {
    let unit = match key {
        PriceKey::Storage { .. } => "GB-Mo",
        _ => "Hrs",
    };
    let mut found: Vec<(String, f64)> = documents
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|d| on_demand(&d, unit))
        .collect();
    found.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    let Some((sku, price)) = found.first().cloned() else {
        return Err(format!(
            "unpriced: the AWS Price List has no on-demand product for it ({} answers)",
            documents.len()
        ));
    };
    if found.iter().any(|(_, p)| (p - price).abs() > 1e-9) {
        let skus: Vec<&str> = found.iter().map(|(s, _)| s.as_str()).collect();
        return Err(format!(
            "unpriced: the AWS Price List has {} products at different prices for it ({})",
            found.len(),
            skus.join(", ")
        ));
    }
    Ok(Price {
        per_unit: price,
        currency: "USD".into(),
        source: format!("AWS Price List, SKU {sku}"),
        as_of: as_of.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(sku: &str, unit: &str, usd: &str) -> String {
        serde_json::json!({
            "product": {"sku": sku, "productFamily": "Compute Instance", "attributes": {}},
            "terms": {"OnDemand": {format!("{sku}.JRTCKXETXF"): {"priceDimensions": {
                format!("{sku}.JRTCKXETXF.6YS6EN2CT7"): {
                    "unit": unit, "pricePerUnit": {"USD": usd}, "description": "x"
                }
            }}}}
        })
        .to_string()
    }

    #[test]
    fn one_positive_price_per_hour_is_the_answer() {
        let key = PriceKey::Instance {
            region: "ap-northeast-2".into(),
            instance_type: "t3.medium".into(),
        };
        let p = pick(&key, &[doc("A", "Hrs", "0.0520000000")], "today").unwrap();
        assert_eq!(
            (p.per_unit, p.source.as_str()),
            (0.052, "AWS Price List, SKU A")
        );
        // A zero-priced product (unused reservation) does not count; the same price twice is
        // one answer; two prices are none.
        let p = pick(
            &key,
            &[
                doc("Z", "Hrs", "0.0000000000"),
                doc("A", "Hrs", "0.052"),
                doc("B", "Hrs", "0.052"),
            ],
            "today",
        )
        .unwrap();
        assert_eq!(p.per_unit, 0.052);
        let e = pick(
            &key,
            &[doc("A", "Hrs", "0.052"), doc("C", "Hrs", "0.06")],
            "t",
        )
        .unwrap_err();
        assert!(
            e.contains("2 products at different prices for it (A, C)"),
            "{e}"
        );
        let e = pick(&key, &[], "t").unwrap_err();
        assert!(e.contains("no on-demand product"), "{e}");
    }

    #[test]
    fn engines_and_volumes_are_named_as_the_price_list_names_them() {
        let (svc, f) = query(&PriceKey::Database {
            region: "ap-northeast-2".into(),
            engine: "mysql".into(),
            class: "db.t3.medium".into(),
            multi_az: true,
        })
        .unwrap();
        assert_eq!(svc, "AmazonRDS");
        assert!(f.contains(&("databaseEngine", "MySQL".into())));
        assert!(f.contains(&("deploymentOption", "Multi-AZ".into())));
        assert!(query(&PriceKey::Storage {
            region: "r".into(),
            storage_type: "aurora-iopt1".into(),
            multi_az: false
        })
        .is_err());
    }
}
