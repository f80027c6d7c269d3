//! The price file (`[cost] price_file`): hourly prices per instance type and database class,
//! storage per GB-month, for one region. It overrides the Price List API and serves offline and
//! against the emulator. Every error names the file, line and field.
//!
//! ```yaml
//! source: example prices for the demo, not AWS's
//! as_of: "2026-12-01"
//! currency: USD
//! region: ap-northeast-2
//! instances:              # EC2 on-demand, Linux, shared tenancy: per instance-hour
//!   t3.medium: 0.052
//! databases:
//!   engine: mysql         # the engine these prices are for
//!   classes:              # per instance-hour
//!     db.t3.medium: { single_az: 0.073, multi_az: 0.146 }
//!   storage:              # per GB-month
//!     type: gp2
//!     single_az: 0.131
//!     multi_az: 0.262
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Price, PriceBook, PriceKey};
use crate::spec::yaml::{self, Node, Value};

/// A price file, read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceFile {
    /// The path it was read from, for every figure's "where from".
    pub path: String,
    pub source: String,
    pub as_of: String,
    pub currency: String,
    pub region: String,
    pub instances: BTreeMap<String, f64>,
    /// The engine the database prices are for (`mysql`).
    pub database_engine: Option<String>,
    /// Class → (Single-AZ, Multi-AZ) per hour; either may be missing.
    pub database_classes: BTreeMap<String, (Option<f64>, Option<f64>)>,
    pub storage_type: Option<String>,
    pub storage_single_az: Option<f64>,
    pub storage_multi_az: Option<f64>,
}

/// An error in a price file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceFileError {
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub message: String,
}

impl std::fmt::Display for PriceFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

impl std::error::Error for PriceFileError {}

struct Reader<'a> {
    file: &'a str,
}

impl Reader<'_> {
    fn err(&self, n: &Node, message: impl Into<String>) -> PriceFileError {
        PriceFileError {
            file: self.file.to_owned(),
            line: n.pos.line,
            col: n.pos.col,
            message: message.into(),
        }
    }

    fn map<'n>(
        &self,
        n: &'n Node,
        path: &str,
        allowed: &[&str],
    ) -> Result<BTreeMap<String, &'n Node>, PriceFileError> {
        let Value::Map(entries) = &n.value else {
            return Err(self.err(
                n,
                format!("`{path}`: expected a mapping, found {}", n.kind()),
            ));
        };
        let mut out = BTreeMap::new();
        for (k, v) in entries {
            let key = self.text(k, path)?;
            if !allowed.is_empty() && !allowed.contains(&key.as_str()) {
                return Err(self.err(
                    k,
                    format!(
                        "`{path}`: unknown key `{key}` (expected one of {})",
                        allowed.join(", ")
                    ),
                ));
            }
            if out.insert(key.clone(), v).is_some() {
                return Err(self.err(k, format!("`{path}.{key}` is given twice")));
            }
        }
        Ok(out)
    }

    fn text(&self, n: &Node, path: &str) -> Result<String, PriceFileError> {
        match &n.value {
            Value::Scalar { text, .. } if !n.is_null() && !text.trim().is_empty() => {
                Ok(text.clone())
            }
            _ => Err(self.err(n, format!("`{path}`: expected text, found {}", n.kind()))),
        }
    }

    fn price(&self, n: &Node, path: &str) -> Result<f64, PriceFileError> {
        let t = match &n.value {
            Value::Scalar {
                text,
                quoted: false,
            } => text,
            _ => return Err(self.err(n, format!("`{path}`: expected a price, found {}", n.kind()))),
        };
        match t.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
            _ => Err(self.err(
                n,
                format!("`{path}`: expected a price of 0 or more, found `{t}`"),
            )),
        }
    }
}

/// Reads a price file's text; `path` names it in errors and in every figure priced from it.
pub fn parse_price_file(path: &str, text: &str) -> Result<PriceFile, PriceFileError> {
    if text.len() > 1024 * 1024 {
        return Err(PriceFileError {
            file: path.to_owned(),
            line: 1,
            col: 1,
            message: "the price file is larger than 1 MiB".into(),
        });
    }
    let r = Reader { file: path };
    let doc = yaml::parse(text).map_err(|e| PriceFileError {
        file: path.to_owned(),
        line: e.pos.line,
        col: e.pos.col,
        message: e.message,
    })?;
    let top = r.map(
        &doc,
        "the price file",
        &[
            "source",
            "as_of",
            "currency",
            "region",
            "instances",
            "databases",
        ],
    )?;
    let need = |key: &str| {
        top.get(key)
            .copied()
            .ok_or_else(|| r.err(&doc, format!("`{key}` is missing")))
    };
    let mut out = PriceFile {
        path: path.to_owned(),
        source: r.text(need("source")?, "source")?,
        as_of: r.text(need("as_of")?, "as_of")?,
        currency: r.text(need("currency")?, "currency")?,
        region: r.text(need("region")?, "region")?,
        instances: BTreeMap::new(),
        database_engine: None,
        database_classes: BTreeMap::new(),
        storage_type: None,
        storage_single_az: None,
        storage_multi_az: None,
    };
    if let Some(n) = top.get("instances") {
        for (t, v) in r.map(n, "instances", &[])? {
            let p = r.price(v, &format!("instances.{t}"))?;
            out.instances.insert(t, p);
        }
    }
    if let Some(n) = top.get("databases") {
        let d = r.map(n, "databases", &["engine", "classes", "storage"])?;
        if let Some(e) = d.get("engine") {
            out.database_engine = Some(r.text(e, "databases.engine")?.to_ascii_lowercase());
        }
        if let Some(c) = d.get("classes") {
            for (class, v) in r.map(c, "databases.classes", &[])? {
                let path = format!("databases.classes.{class}");
                let m = r.map(v, &path, &["single_az", "multi_az"])?;
                let single = m
                    .get("single_az")
                    .map(|n| r.price(n, &format!("{path}.single_az")))
                    .transpose()?;
                let multi = m
                    .get("multi_az")
                    .map(|n| r.price(n, &format!("{path}.multi_az")))
                    .transpose()?;
                out.database_classes.insert(class, (single, multi));
            }
            if out.database_engine.is_none() && !out.database_classes.is_empty() {
                return Err(r.err(
                    n,
                    "`databases.engine` is missing: say which engine the class prices are for",
                ));
            }
        }
        if let Some(s) = d.get("storage") {
            let m = r.map(s, "databases.storage", &["type", "single_az", "multi_az"])?;
            let t = m
                .get("type")
                .ok_or_else(|| r.err(s, "`databases.storage.type` is missing (like gp2)"))?;
            out.storage_type = Some(r.text(t, "databases.storage.type")?);
            out.storage_single_az = m
                .get("single_az")
                .map(|n| r.price(n, "databases.storage.single_az"))
                .transpose()?;
            out.storage_multi_az = m
                .get("multi_az")
                .map(|n| r.price(n, "databases.storage.multi_az"))
                .transpose()?;
        }
    }
    Ok(out)
}

impl PriceFile {
    fn price(&self, per_unit: f64) -> Price {
        Price {
            per_unit,
            currency: self.currency.clone(),
            source: format!("price file {} ({})", self.path, self.source),
            as_of: self.as_of.clone(),
        }
    }

    /// The price of `key` from this file, or why it has none.
    pub fn lookup(&self, key: &PriceKey) -> Result<Price, String> {
        let region = match key {
            PriceKey::Instance { region, .. }
            | PriceKey::Database { region, .. }
            | PriceKey::Storage { region, .. } => region,
        };
        if region != &self.region {
            return Err(format!(
                "unpriced: the price file {} has prices for {} only",
                self.path, self.region
            ));
        }
        let missing = || format!("unpriced: the price file {} has no price for it", self.path);
        match key {
            PriceKey::Instance { instance_type, .. } => self
                .instances
                .get(instance_type)
                .map(|p| self.price(*p))
                .ok_or_else(missing),
            PriceKey::Database {
                engine,
                class,
                multi_az,
                ..
            } => {
                if self.database_engine.as_deref() != Some(engine.to_ascii_lowercase().as_str()) {
                    return Err(format!(
                        "unpriced: the price file {} prices {} databases, not {engine}",
                        self.path,
                        self.database_engine.as_deref().unwrap_or("no")
                    ));
                }
                let (single, multi) = self.database_classes.get(class).ok_or_else(missing)?;
                let p = if *multi_az { multi } else { single };
                p.map(|p| self.price(p)).ok_or_else(missing)
            }
            PriceKey::Storage {
                storage_type,
                multi_az,
                ..
            } => {
                if self.storage_type.as_deref() != Some(storage_type.as_str()) {
                    return Err(missing());
                }
                let p = if *multi_az {
                    self.storage_multi_az
                } else {
                    self.storage_single_az
                };
                p.map(|p| self.price(p)).ok_or_else(missing)
            }
        }
    }

    /// A book of every key's price from this file.
    pub fn book(&self, keys: &[PriceKey]) -> PriceBook {
        let mut b = PriceBook::default();
        for k in keys {
            b.insert(k.clone(), self.lookup(k));
        }
        b
    }
}
