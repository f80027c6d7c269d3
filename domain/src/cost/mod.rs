//! Cost: what an environment costs per month as a range, what a change adds, and the cost
//! policy's verdict on it.
//!
//! A month is 730 hours (AWS's convention). A group's instance-hours come from its capacity
//! over a reference period (a calendar month in UTC), minute by minute as its schedule moves it
//! in the actions' own time zones (the schedule preview's engine, so daylight saving counts),
//! scaled to 730 hours: the *floor* has every hour at its min, the *ceiling* at its max, and the
//! *expected* figure at the desired capacity where the schedule (or the group) sets one, kept
//! inside [min, max] as Auto Scaling does, else at its min. For a daily schedule in a zone
//! without daylight saving this is exactly the daily pattern × 730 / 24.
//!
//! Prices come from a [`PriceBook`] the engine fills (the Price List API or a price file); a
//! resource without a price is *unpriced*, listed with the reason, and never guessed.

mod price_file;

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::schedule::{group_preview, Capacity};
use crate::spec::{AutoscalingGroup, CostPolicy, Database, EnvironmentSpec};

pub use price_file::{parse_price_file, PriceFile, PriceFileError};

/// Hours in AWS's month.
pub const MONTH_HOURS: f64 = 730.0;

/// What a price is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PriceKey {
    /// EC2 on-demand, Linux, shared tenancy: per instance-hour.
    Instance {
        region: String,
        instance_type: String,
    },
    /// An RDS instance: per hour, Multi-AZ priced as its own product (AWS's way).
    Database {
        region: String,
        engine: String,
        class: String,
        multi_az: bool,
    },
    /// RDS storage: per GB-month.
    Storage {
        region: String,
        storage_type: String,
        multi_az: bool,
    },
}

impl PriceKey {
    /// `t3.medium in ap-northeast-2`, as the page names it.
    pub fn text(&self) -> String {
        let az = |m: bool| if m { "Multi-AZ" } else { "Single-AZ" };
        match self {
            PriceKey::Instance {
                region,
                instance_type,
            } => format!("{instance_type} in {region}"),
            PriceKey::Database {
                region,
                engine,
                class,
                multi_az,
            } => format!("{class} {engine} {} in {region}", az(*multi_az)),
            PriceKey::Storage {
                region,
                storage_type,
                multi_az,
            } => format!("{storage_type} storage {} in {region}", az(*multi_az)),
        }
    }
}

/// One price and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Price {
    /// Per hour, or per GB-month for storage.
    pub per_unit: f64,
    pub currency: String,
    /// `price file demo/prices.yaml (example prices, not AWS's)`, `AWS Price List, SKU …`.
    pub source: String,
    /// When the price was read or what date the file gives (RFC 3339 or a date).
    pub as_of: String,
}

/// A price, or why there is none.
pub type Priced = Result<Price, String>;

/// The prices the engine looked up, by key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceBook(BTreeMap<PriceKey, Priced>);

impl PriceBook {
    pub fn insert(&mut self, key: PriceKey, price: Priced) {
        self.0.insert(key, price);
    }

    pub fn get(&self, key: &PriceKey) -> Priced {
        self.0
            .get(key)
            .cloned()
            .unwrap_or_else(|| Err("no price was looked up".to_owned()))
    }
}

/// What AWS says about an environment beyond its spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    pub region: String,
    /// Each group's instance type, from its launch template.
    pub instance_types: BTreeMap<String, String>,
    pub databases: BTreeMap<String, DatabaseFacts>,
}

/// A database as AWS runs it (or as the price file assumes it when nothing was read).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseFacts {
    pub engine: Option<String>,
    pub storage_type: Option<String>,
    pub instance_class: Option<String>,
    pub multi_az: Option<bool>,
    pub allocated_storage_gb: Option<u32>,
    /// Where these facts come from: `AWS` or `assumed by the price file`.
    pub from: String,
}

/// Floor, expected and ceiling of one figure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Band {
    pub floor: f64,
    pub expected: f64,
    pub ceiling: f64,
}

impl Band {
    pub fn flat(v: f64) -> Band {
        Band {
            floor: v,
            expected: v,
            ceiling: v,
        }
    }

    pub fn scale(self, k: f64) -> Band {
        Band {
            floor: self.floor * k,
            expected: self.expected * k,
            ceiling: self.ceiling * k,
        }
    }

    pub fn plus(self, o: Band) -> Band {
        Band {
            floor: self.floor + o.floor,
            expected: self.expected + o.expected,
            ceiling: self.ceiling + o.ceiling,
        }
    }

    pub fn minus(self, o: Band) -> Band {
        self.plus(o.scale(-1.0))
    }

    /// `$312.44 – $590.40 (expected $389.52)`.
    pub fn text(&self, currency: &str) -> String {
        format!(
            "{} – {} (expected {})",
            money(self.floor, currency),
            money(self.ceiling, currency),
            money(self.expected, currency)
        )
    }
}

/// An amount to the cent: `$1,234.50`, `-$3.20`, `12.00 EUR`.
pub fn money(v: f64, currency: &str) -> String {
    let cents = (v * 100.0).round() as i64;
    let (sign, cents) = if cents < 0 {
        ("-", -cents)
    } else {
        ("", cents)
    };
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let figure = format!("{grouped}.{:02}", cents % 100);
    match currency {
        "USD" => format!("{sign}${figure}"),
        c => format!("{sign}{figure} {c}"),
    }
}

/// A signed difference: `+$76.04`, `-$3.20`, `±$0.00`.
pub fn money_delta(v: f64, currency: &str) -> String {
    if (v * 100.0).round() == 0.0 {
        return format!("±{}", money(0.0, currency));
    }
    if v > 0.0 {
        format!("+{}", money(v, currency))
    } else {
        money(v, currency)
    }
}

/// The reference period: a calendar month in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Period {
    /// The calendar month (UTC) that holds `t`.
    pub fn month_of(t: DateTime<Utc>) -> Period {
        let from = Utc
            .with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
            .single()
            .unwrap_or(t);
        let (y, m) = if t.month() == 12 {
            (t.year() + 1, 1)
        } else {
            (t.year(), t.month() + 1)
        };
        let to = Utc
            .with_ymd_and_hms(y, m, 1, 0, 0, 0)
            .single()
            .unwrap_or(from + Duration::days(30));
        Period { from, to }
    }

    pub fn hours(&self) -> f64 {
        (self.to - self.from).num_minutes() as f64 / 60.0
    }
}

/// One group's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupCost {
    pub group: String,
    pub instance_type: Option<String>,
    /// `launch template` (AWS) or `spec`.
    pub instance_type_from: Option<String>,
    pub price: Option<Price>,
    /// Why it has no price (`None`: priced).
    pub unpriced: Option<String>,
    /// Instance-hours per month under its schedule.
    pub hours: Band,
    /// Instance-hours per month without its schedule: its own min and max all month.
    pub flat_hours: Band,
    pub monthly: Option<Band>,
    pub flat_monthly: Option<Band>,
}

/// One database's figures: instance-hours (Multi-AZ as its own price) and storage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseCost {
    pub identifier: String,
    pub instance_class: Option<String>,
    pub multi_az: bool,
    pub allocated_storage_gb: Option<u32>,
    pub engine: Option<String>,
    pub storage_type: Option<String>,
    /// Where engine and storage type come from.
    pub facts_from: String,
    pub instance_price: Option<Price>,
    pub storage_price: Option<Price>,
    pub instance_monthly: Option<f64>,
    pub storage_monthly: Option<f64>,
    /// Reasons a part has no price.
    pub unpriced: Vec<String>,
}

impl DatabaseCost {
    /// Instance and storage per month, when both are priced.
    pub fn monthly(&self) -> Option<f64> {
        self.instance_monthly
            .zip(self.storage_monthly)
            .map(|(i, s)| i + s)
    }
}

/// One hour of the weekly chart: what the environment costs in that hour.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HourCost {
    /// Unix seconds, the hour's start.
    pub at_unix: i64,
    pub band: Band,
}

/// An environment's monthly cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentCost {
    pub environment: String,
    pub region: String,
    pub currency: String,
    /// The reference month (RFC 3339, UTC) and its real length in hours.
    #[serde(with = "crate::time::stored")]
    pub period_from: DateTime<Utc>,
    #[serde(with = "crate::time::stored")]
    pub period_to: DateTime<Utc>,
    pub period_hours: f64,
    pub groups: Vec<GroupCost>,
    pub databases: Vec<DatabaseCost>,
    /// Everything priced, per 730-hour month.
    pub monthly: Band,
    /// The same groups without their schedules, plus the databases.
    pub flat_monthly: Band,
    /// What the schedules save against flat groups: flat − scheduled (negative: they cost).
    pub saving: Band,
    /// Every resource without a price, with the reason.
    pub unpriced: Vec<String>,
    /// The first week of the period, hour by hour.
    pub week: Vec<HourCost>,
    /// Where the prices came from, once each.
    pub sources: Vec<String>,
}

impl EnvironmentCost {
    pub fn is_complete(&self) -> bool {
        self.unpriced.is_empty()
    }
}

/// Capacity over `[from, to)` as segments, each holding until the next.
fn segments(g: &AutoscalingGroup, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(i64, Capacity)> {
    let hours = (to - from).num_minutes().div_euclid(60) + 1;
    let p = group_preview(g, from, hours.clamp(1, 24 * 62) as u32);
    let mut out = vec![(from.timestamp(), p.start)];
    for s in p.steps {
        let at = s.at.timestamp();
        if at >= to.timestamp() {
            break;
        }
        match out.last_mut() {
            Some(last) if last.0 == at => last.1 = s.capacity,
            _ => out.push((at, s.capacity)),
        }
    }
    out
}

fn expected(c: &Capacity) -> u32 {
    c.desired.unwrap_or(c.min).clamp(c.min, c.max.max(c.min))
}

/// Instance-hours in `[a, b)` (unix seconds) of a segment list ending at `end`.
fn instance_hours(segs: &[(i64, Capacity)], end: i64, a: i64, b: i64) -> Band {
    let mut out = Band::default();
    for (i, (start, c)) in segs.iter().enumerate() {
        let stop = segs.get(i + 1).map_or(end, |n| n.0);
        let (lo, hi) = ((*start).max(a), stop.min(b));
        if hi <= lo {
            continue;
        }
        let h = (hi - lo) as f64 / 3600.0;
        out = out.plus(Band {
            floor: f64::from(c.min) * h,
            expected: f64::from(expected(c)) * h,
            ceiling: f64::from(c.max.max(c.min)) * h,
        });
    }
    out
}

/// The price of `key` from `book`, in `currency` only: a price in another currency is
/// unpriced, with the reason (sums never mix currencies).
fn priced(
    book: &PriceBook,
    key: PriceKey,
    currency: &str,
    sources: &mut Vec<String>,
) -> Result<Price, String> {
    let what = key.text();
    let p = book.get(&key).map_err(|why| format!("{what}: {why}"))?;
    if p.currency != currency {
        return Err(format!(
            "{what}: unpriced: {} gives a price in {}, not in {currency} (the figures' currency), and tierdeck never adds one currency to another",
            p.source, p.currency
        ));
    }
    let source = format!("{} (as of {})", p.source, p.as_of);
    if !sources.contains(&source) {
        sources.push(source);
    }
    Ok(p)
}

/// A group's instance type and where it comes from: AWS's launch template first, else the spec.
fn instance_type_of(g: &AutoscalingGroup, facts: &Facts) -> Option<(String, &'static str)> {
    match facts.instance_types.get(g.name.as_str()) {
        Some(t) => Some((t.clone(), "launch template")),
        None => g.instance_type.clone().map(|t| (t, "spec")),
    }
}

/// What a database is priced by: the spec's settings where it states them, else AWS's.
struct DatabaseInputs {
    class: Option<String>,
    multi_az: bool,
    storage: Option<u32>,
    facts: DatabaseFacts,
}

impl DatabaseInputs {
    fn of(d: &Database, facts: &Facts) -> DatabaseInputs {
        let f = facts
            .databases
            .get(d.identifier.as_str())
            .cloned()
            .unwrap_or_default();
        DatabaseInputs {
            class: d.instance_class.clone().or(f.instance_class.clone()),
            multi_az: d.multi_az.or(f.multi_az).unwrap_or(false),
            storage: d.allocated_storage_gb.or(f.allocated_storage_gb),
            facts: f,
        }
    }

    fn instance_key(&self, region: &str) -> Option<PriceKey> {
        Some(PriceKey::Database {
            region: region.to_owned(),
            engine: self.facts.engine.clone()?,
            class: self.class.clone()?,
            multi_az: self.multi_az,
        })
    }

    fn storage_key(&self, region: &str) -> Option<PriceKey> {
        self.storage?;
        Some(PriceKey::Storage {
            region: region.to_owned(),
            storage_type: self.facts.storage_type.clone()?,
            multi_az: self.multi_az,
        })
    }
}

/// The monthly cost of `spec` over `period` with `facts` and `book`.
pub fn environment_cost(
    spec: &EnvironmentSpec,
    facts: &Facts,
    book: &PriceBook,
    currency: &str,
    period: Period,
) -> EnvironmentCost {
    let scale = MONTH_HOURS / period.hours().max(1.0);
    let (from, to) = (period.from.timestamp(), period.to.timestamp());
    let week_end = (from + 7 * 24 * 3600).min(to);
    let mut sources = Vec::new();
    let mut unpriced = Vec::new();
    let mut monthly = Band::default();
    let mut flat_monthly = Band::default();
    let mut week: Vec<HourCost> = (from..week_end)
        .step_by(3600)
        .map(|at_unix| HourCost {
            at_unix,
            band: Band::default(),
        })
        .collect();

    let mut groups = Vec::new();
    for g in &spec.autoscaling_groups {
        let segs = segments(g, period.from, period.to);
        let hours = instance_hours(&segs, to, from, to).scale(scale);
        let flat = Capacity {
            min: g.capacity.min(),
            max: g.capacity.max(),
            desired: g.capacity.desired(),
        };
        let flat_hours = Band {
            floor: f64::from(flat.min),
            expected: f64::from(expected(&flat)),
            ceiling: f64::from(flat.max.max(flat.min)),
        }
        .scale(MONTH_HOURS);
        let (instance_type, instance_type_from) = match instance_type_of(g, facts) {
            Some((t, from)) => (Some(t), Some(from.to_owned())),
            None => (None, None),
        };
        let price = match &instance_type {
            None => Err(format!(
                "{}: its instance type is not known (AWS has not been read and the spec states no instance_type)",
                g.name
            )),
            Some(t) => priced(
                book,
                PriceKey::Instance {
                    region: facts.region.clone(),
                    instance_type: t.clone(),
                },
                currency,
                &mut sources,
            )
            .map_err(|why| format!("{}: {why}", g.name)),
        };
        let (price, why) = match price {
            Ok(p) => (Some(p), None),
            Err(why) => {
                unpriced.push(why.clone());
                (None, Some(why))
            }
        };
        let per = price.as_ref().map(|p| p.per_unit);
        if let Some(per) = per {
            monthly = monthly.plus(hours.scale(per));
            flat_monthly = flat_monthly.plus(flat_hours.scale(per));
            for h in &mut week {
                let b = instance_hours(&segs, to, h.at_unix, h.at_unix + 3600).scale(per);
                h.band = h.band.plus(b);
            }
        }
        groups.push(GroupCost {
            group: g.name.to_string(),
            instance_type,
            instance_type_from,
            monthly: per.map(|p| hours.scale(p)),
            flat_monthly: per.map(|p| flat_hours.scale(p)),
            price,
            unpriced: why,
            hours,
            flat_hours,
        });
    }

    let mut databases = Vec::new();
    for d in &spec.databases {
        let inputs = DatabaseInputs::of(d, facts);
        let mut why = Vec::new();
        let mut price_of = |key: Option<PriceKey>, unknown: &str| match key {
            Some(k) => priced(book, k, currency, &mut sources)
                .map_err(|e| why.push(format!("{}: {e}", d.identifier)))
                .ok(),
            None => {
                why.push(format!("{}: {unknown}", d.identifier));
                None
            }
        };
        let instance_price = price_of(
            inputs.instance_key(&facts.region),
            "its instance class or engine is not known",
        );
        let storage_price = price_of(
            inputs.storage_key(&facts.region),
            "its storage size or type is not known",
        );
        let DatabaseInputs {
            class,
            multi_az,
            storage,
            facts: f,
        } = inputs;
        let instance_monthly = instance_price.as_ref().map(|p| p.per_unit * MONTH_HOURS);
        let storage_monthly = storage_price
            .as_ref()
            .zip(storage)
            .map(|(p, gb)| p.per_unit * f64::from(gb));
        let fixed = instance_monthly.unwrap_or(0.0) + storage_monthly.unwrap_or(0.0);
        monthly = monthly.plus(Band::flat(fixed));
        flat_monthly = flat_monthly.plus(Band::flat(fixed));
        for h in &mut week {
            h.band = h.band.plus(Band::flat(fixed / MONTH_HOURS));
        }
        unpriced.extend(why.iter().cloned());
        databases.push(DatabaseCost {
            identifier: d.identifier.to_string(),
            instance_class: class,
            multi_az,
            allocated_storage_gb: storage,
            engine: f.engine.clone(),
            storage_type: f.storage_type.clone(),
            facts_from: f.from.clone(),
            instance_price,
            storage_price,
            instance_monthly,
            storage_monthly,
            unpriced: why,
        });
    }

    EnvironmentCost {
        environment: spec.environment.name.to_string(),
        region: facts.region.clone(),
        currency: currency.to_owned(),
        period_from: period.from,
        period_to: period.to,
        period_hours: period.hours(),
        groups,
        databases,
        saving: flat_monthly.minus(monthly),
        monthly,
        flat_monthly,
        unpriced,
        week,
        sources,
    }
}

/// What ran: instance-hours from the scaling history's in-service counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ran {
    pub group: String,
    /// Hours of history the figure covers (from the first snapshot on).
    pub covered_hours: f64,
    pub instance_hours: f64,
    pub cost: Option<f64>,
    /// The same pace over a 730-hour month.
    pub monthly: Option<f64>,
}

/// Instance-hours of in-service counts `(unix seconds, count)`, oldest first, each holding
/// until the next and the last until `until`; nothing before the first. Returns (hours
/// covered, instance-hours).
pub fn ran_hours(snapshots: &[(i64, u32)], until: i64) -> (f64, f64) {
    let Some(first) = snapshots.first() else {
        return (0.0, 0.0);
    };
    let mut total = 0.0;
    for (i, (at, n)) in snapshots.iter().enumerate() {
        let stop = snapshots.get(i + 1).map_or(until, |s| s.0).min(until);
        if stop > *at {
            total += f64::from(*n) * (stop - at) as f64 / 3600.0;
        }
    }
    (((until - first.0).max(0)) as f64 / 3600.0, total)
}

/// A change's monthly cost before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeCost {
    pub currency: String,
    /// `None`: the environment was never applied.
    pub before: Option<Band>,
    pub after: Band,
    /// after − before (before counts as nothing when never applied).
    pub delta: Band,
    /// Resources of the change's spec without a price.
    pub unpriced: Vec<String>,
    /// What may raise the monthly ceiling, said without prices where some are missing (see
    /// [`may_rise`]); empty: the change cannot raise it.
    #[serde(default)]
    pub ceiling_may_rise: Vec<String>,
    /// The same for the expected figure.
    #[serde(default)]
    pub expected_may_rise: Vec<String>,
}

impl ChangeCost {
    pub fn of(before: Option<&EnvironmentCost>, after: &EnvironmentCost) -> ChangeCost {
        let b = before.map(|b| b.monthly);
        ChangeCost {
            currency: after.currency.clone(),
            before: b,
            after: after.monthly,
            delta: after.monthly.minus(b.unwrap_or_default()),
            unpriced: after.unpriced.clone(),
            ceiling_may_rise: may_rise(before, after, |b| b.ceiling),
            expected_may_rise: may_rise(before, after, |b| b.expected),
        }
    }

    /// Whether the change moves the figures at all (to the cent).
    pub fn moves(&self) -> bool {
        let c = |v: f64| (v * 100.0).round() != 0.0;
        c(self.delta.floor) || c(self.delta.expected) || c(self.delta.ceiling)
    }

    /// `monthly $590.40 → $666.44 (+$76.04) expected …`, for notifications.
    pub fn text(&self) -> String {
        let c = &self.currency;
        let before = self
            .before
            .map(|b| b.text(c))
            .unwrap_or_else(|| "nothing (never applied)".to_owned());
        format!(
            "monthly {before} → {}; expected {}, ceiling {}",
            self.after.text(c),
            money_delta(self.delta.expected, c),
            money_delta(self.delta.ceiling, c)
        )
    }
}

/// What in `after` may make one figure (`pick`: the ceiling or the expected one) higher than in
/// `before`, without needing a price that is missing: each resource priced on both sides by
/// its money, and each other one by what it is priced by (a new resource, another instance type,
/// class, engine or storage type, Multi-AZ turned on, more instance-hours or storage). A
/// resource that is gone lowers the figure. Empty: the figure cannot rise.
pub fn may_rise(
    before: Option<&EnvironmentCost>,
    after: &EnvironmentCost,
    pick: fn(&Band) -> f64,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut priced_rise = 0.0;
    for g in &after.groups {
        let was = before.and_then(|b| b.groups.iter().find(|x| x.group == g.group));
        let name = format!("autoscaling group {}", g.group);
        match (was, g.monthly, was.and_then(|w| w.monthly)) {
            (Some(_), Some(now), Some(then)) => priced_rise += pick(&now) - pick(&then),
            (None, _, _) if pick(&g.hours) > 0.0 => out.push(format!("{name} is new")),
            (None, _, _) => {}
            (Some(w), _, _) if w.instance_type != g.instance_type || g.instance_type.is_none() => {
                out.push(format!(
                    "{name} launches {} instead of {}",
                    g.instance_type.as_deref().unwrap_or("an unknown type"),
                    w.instance_type.as_deref().unwrap_or("an unknown type")
                ))
            }
            (Some(w), _, _) if pick(&g.hours) > pick(&w.hours) + 1e-9 => out.push(format!(
                "{name} runs more instance-hours ({:.0} instead of {:.0})",
                pick(&g.hours),
                pick(&w.hours)
            )),
            (Some(_), _, _) => {}
        }
    }
    for d in &after.databases {
        let was = before.and_then(|b| b.databases.iter().find(|x| x.identifier == d.identifier));
        let name = format!("database {}", d.identifier);
        let Some(w) = was else {
            out.push(format!("{name} is new"));
            continue;
        };
        if let (Some(now), Some(then)) = (d.monthly(), w.monthly()) {
            priced_rise += now - then;
            continue;
        }
        let priced_as = |x: &DatabaseCost| {
            (
                x.instance_class.clone(),
                x.engine.clone(),
                x.storage_type.clone(),
            )
        };
        if priced_as(d) != priced_as(w) || d.instance_class.is_none() || d.engine.is_none() {
            out.push(format!("{name} changes its class, engine or storage type"));
        } else if d.multi_az && !w.multi_az {
            out.push(format!("{name} turns Multi-AZ on"));
        } else if d.allocated_storage_gb.unwrap_or(u32::MAX) > w.allocated_storage_gb.unwrap_or(0) {
            out.push(format!("{name} has more storage"));
        }
    }
    if priced_rise * 100.0 >= 0.5 {
        out.push(format!(
            "the priced resources rise by {}",
            money(priced_rise, &after.currency)
        ));
    }
    out
}

/// What the cost policy says about a change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CostVerdict {
    /// Why it may not be approved or applied (`None`: the ceiling is within the limit).
    pub blocked: Option<String>,
    /// Why it may be applied only as an emergency, with a reason: `max_monthly` cannot be
    /// checked (something is unpriced) and the change may raise the ceiling.
    #[serde(default)]
    pub unchecked: Option<String>,
    /// Why it needs one more approval than usual (`None`: it does not).
    pub extra_approval: Option<String>,
    /// Whether some figure is missing (something is unpriced): the verdict then rests on what
    /// may rise, not on money.
    #[serde(default)]
    pub incomplete: bool,
}

/// The cost policy's verdict. A change that lowers a ceiling already above the limit is not
/// blocked. A limit that cannot be checked because something is unpriced holds back only what
/// may raise the figure it limits ([`may_rise`]): missing prices never let a rise through
/// unseen, and never stop what cannot cost more. Such a rise may still be applied as an
/// emergency (and a revert is never held back: see [`apply_verdict`]).
pub fn verdict(policy: &CostPolicy, c: &ChangeCost) -> CostVerdict {
    let cur = &c.currency;
    let unpriced = (!c.unpriced.is_empty()).then(|| c.unpriced.join("; "));
    let unchecked = policy.max_monthly.and_then(|max| {
        let u = unpriced.as_ref()?;
        (!c.ceiling_may_rise.is_empty()).then(|| {
            format!(
                "environment.cost.max_monthly ({}) cannot be checked ({u}) and the change may raise the monthly ceiling ({}): it may be applied only as an emergency, with a reason",
                money(max, cur),
                c.ceiling_may_rise.join("; ")
            )
        })
    });
    let blocked = policy.max_monthly.and_then(|max| {
        if unpriced.is_some() {
            return None;
        }
        let rises = c
            .before
            .is_none_or(|b| (c.after.ceiling - b.ceiling) * 100.0 >= 0.5);
        (c.after.ceiling > max && rises).then(|| {
            format!(
                "Its monthly ceiling {} is above environment.cost.max_monthly ({}).",
                money(c.after.ceiling, cur),
                money(max, cur)
            )
        })
    });
    let extra_approval = policy.extra_approval_above.and_then(|above| {
        if let Some(u) = &unpriced {
            return (!c.expected_may_rise.is_empty()).then(|| {
                format!(
                    "environment.cost.extra_approval_above ({}) cannot be checked ({u}) and the change may raise the expected cost ({}), so it needs one more approval.",
                    money(above, cur),
                    c.expected_may_rise.join("; ")
                )
            });
        }
        (c.delta.expected > above).then(|| {
            format!(
                "Its expected monthly cost rises by {} (more than environment.cost.extra_approval_above, {}): it needs one more approval.",
                money(c.delta.expected, cur),
                money(above, cur)
            )
        })
    });
    CostVerdict {
        blocked,
        unchecked,
        extra_approval,
        incomplete: unpriced.is_some(),
    }
}

/// Adds the cost policy's verdict to the rules that judge a change: one more approval, the
/// reason it is blocked, or the reason it may go only as an emergency, each with a note for the
/// page. A `revert` (back to what ran before) is never held back by figures that cannot be
/// computed: neither an emergency nor one more approval is asked of it for them.
pub fn apply_verdict(policy: &mut crate::policy::Policy, v: &CostVerdict, revert: bool) {
    if revert && v.incomplete {
        if v.unchecked.is_some() || v.extra_approval.is_some() {
            policy.notes.push(format!(
                "Its cost cannot be computed in full, which never holds back a revert: {}",
                v.unchecked
                    .as_deref()
                    .or(v.extra_approval.as_deref())
                    .unwrap_or_default()
            ));
        }
        return;
    }
    if let Some(why) = &v.extra_approval {
        policy.required_approvals = policy.required_approvals.saturating_add(1);
        policy.notes.push(why.clone());
    }
    if let Some(why) = &v.unchecked {
        policy.cost_unchecked = Some(why.clone());
        policy.notes.push(format!("The cost policy: {why}."));
    }
    if let Some(why) = &v.blocked {
        policy.cost_blocked = Some(why.clone());
        policy
            .notes
            .push(format!("The cost policy blocks it: {why}"));
    }
}

/// An environment's cost as its page and `GET /api/v1/environments/{env}/cost` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostReport {
    pub cost: EnvironmentCost,
    /// The commit whose spec was priced, and which it is (`the last applied commit`,
    /// `the branch head (never applied)`).
    pub commit: String,
    pub spec_of: String,
    /// What ran over the last `ran_days` days, from the scaling history.
    pub ran: Vec<Ran>,
    pub ran_days: u32,
    /// Instance types the spec states that differ from the launch template, AWS that could
    /// not be read.
    pub warnings: Vec<String>,
    /// How long computing the figures took (AWS reads and prices included).
    pub computed_ms: u64,
}

/// A change's cost as its page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeCostReport {
    pub cost: ChangeCost,
    pub verdict: CostVerdict,
    /// Per group and database: monthly before and after (`None`: not there, or unpriced).
    pub parts: Vec<CostPart>,
    pub warnings: Vec<String>,
    pub sources: Vec<String>,
}

/// One resource's monthly figures before and after a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostPart {
    pub resource: String,
    pub before: Option<Band>,
    pub after: Option<Band>,
}

impl ChangeCostReport {
    pub fn of(
        before: Option<&EnvironmentCost>,
        after: &EnvironmentCost,
        policy: &CostPolicy,
        warnings: Vec<String>,
    ) -> Self {
        let cost = ChangeCost::of(before, after);
        let verdict = verdict(policy, &cost);
        let parts_of = |c: &EnvironmentCost| -> Vec<(String, Option<Band>)> {
            c.groups
                .iter()
                .map(|g| (format!("autoscaling group {}", g.group), g.monthly))
                .chain(c.databases.iter().map(|d| {
                    (
                        format!("database {}", d.identifier),
                        d.monthly().map(Band::flat),
                    )
                }))
                .collect()
        };
        let b = before.map(parts_of).unwrap_or_default();
        let a = parts_of(after);
        let mut parts: Vec<CostPart> = a
            .iter()
            .map(|(r, m)| CostPart {
                resource: r.clone(),
                before: b.iter().find(|(x, _)| x == r).and_then(|(_, m)| *m),
                after: *m,
            })
            .collect();
        parts.extend(
            b.iter()
                .filter(|(r, _)| !a.iter().any(|(x, _)| x == r))
                .map(|(r, m)| CostPart {
                    resource: r.clone(),
                    before: *m,
                    after: None,
                }),
        );
        ChangeCostReport {
            cost,
            verdict,
            parts,
            warnings,
            sources: after.sources.clone(),
        }
    }
}

/// An environment's cost as text, for the command line.
pub fn report_text(c: &EnvironmentCost) -> String {
    use std::fmt::Write;
    let cur = &c.currency;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: monthly cost (730 h, from {} to {}, {} h)",
        c.environment,
        c.period_from.to_rfc3339(),
        c.period_to.to_rfc3339(),
        c.period_hours
    );
    for g in &c.groups {
        let what = match (&g.instance_type, &g.monthly) {
            (Some(t), Some(m)) => format!("{t}: {}", m.text(cur)),
            (_, _) => g.unpriced.clone().unwrap_or_default(),
        };
        let _ = writeln!(
            out,
            "  autoscaling group {}: {:.1}–{:.1} instance-hours (expected {:.1}); {what}",
            g.group, g.hours.floor, g.hours.ceiling, g.hours.expected
        );
        if let Some(flat) = g.flat_monthly {
            let _ = writeln!(out, "    without its schedule: {}", flat.text(cur));
        }
    }
    for d in &c.databases {
        let class = d.instance_class.as_deref().unwrap_or("?");
        let az = if d.multi_az { "Multi-AZ" } else { "Single-AZ" };
        match (d.instance_monthly, d.storage_monthly) {
            (Some(i), Some(s)) => {
                let _ = writeln!(
                    out,
                    "  database {}: {class} {az} {}, storage {} GB {}",
                    d.identifier,
                    money(i, cur),
                    d.allocated_storage_gb.unwrap_or_default(),
                    money(s, cur)
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "  database {}: {}",
                    d.identifier,
                    d.unpriced.join("; ")
                );
            }
        }
    }
    let _ = writeln!(out, "  total: {}", c.monthly.text(cur));
    let _ = writeln!(
        out,
        "  the schedules save {} at the ceiling, {} expected, {} at the floor",
        money_delta(c.saving.ceiling, cur),
        money_delta(c.saving.expected, cur),
        money_delta(c.saving.floor, cur)
    );
    for u in &c.unpriced {
        let _ = writeln!(out, "  UNPRICED {u}");
    }
    for s in &c.sources {
        let _ = writeln!(out, "  prices: {s}");
    }
    out
}

/// A change's cost as text, for the command line.
pub fn change_text(against: &str, r: &ChangeCostReport) -> String {
    use std::fmt::Write;
    let cur = &r.cost.currency;
    let mut out = String::new();
    let _ = writeln!(out, "against {against}: {}", r.cost.text());
    for p in &r.parts {
        if p.before == p.after {
            continue;
        }
        let show = |b: &Option<Band>| b.map(|b| b.text(cur)).unwrap_or_else(|| "—".to_owned());
        let _ = writeln!(
            out,
            "  {}: {} → {}",
            p.resource,
            show(&p.before),
            show(&p.after)
        );
    }
    if let Some(why) = &r.verdict.blocked {
        let _ = writeln!(out, "  BLOCKED by the cost policy: {why}");
    }
    if let Some(why) = &r.verdict.extra_approval {
        let _ = writeln!(out, "  {why}");
    }
    out
}

/// The keys `spec` needs priced, given `facts`.
pub fn price_keys(spec: &EnvironmentSpec, facts: &Facts) -> Vec<PriceKey> {
    let region = &facts.region;
    let mut keys: Vec<PriceKey> = spec
        .autoscaling_groups
        .iter()
        .filter_map(|g| instance_type_of(g, facts))
        .map(|(instance_type, _)| PriceKey::Instance {
            region: region.clone(),
            instance_type,
        })
        .collect();
    for d in &spec.databases {
        let inputs = DatabaseInputs::of(d, facts);
        keys.extend(inputs.instance_key(region));
        keys.extend(inputs.storage_key(region));
    }
    keys.sort();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests;
