//! `tierdeck cost ENV`: an environment's monthly cost from a spec repository's working tree and
//! a price file, offline (no database, no AWS), for the spec repository's own CI; with
//! `--against REV` also what the working tree adds to the spec at that revision.

use std::path::Path;
use std::process::ExitCode;

use chrono::{TimeZone, Utc};
use domain::cost::{self, ChangeCostReport, DatabaseFacts, Facts, Period, PriceFile};
use domain::spec::EnvironmentSpec;

fn fail(message: impl std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("tierdeck: {message}");
    ExitCode::from(code)
}

/// Offline facts: instance types from the spec, databases as the price file assumes them.
fn facts(spec: &EnvironmentSpec, file: &PriceFile) -> Facts {
    Facts {
        region: spec
            .environment
            .region
            .clone()
            .unwrap_or_else(|| file.region.clone()),
        instance_types: Default::default(),
        databases: spec
            .databases
            .iter()
            .map(|d| {
                (
                    d.identifier.to_string(),
                    DatabaseFacts {
                        engine: file.database_engine.clone(),
                        storage_type: file.storage_type.clone(),
                        from: format!("assumed by the price file {}", file.path),
                        ..DatabaseFacts::default()
                    },
                )
            })
            .collect(),
    }
}

fn price(spec: &EnvironmentSpec, file: &PriceFile, period: Period) -> cost::EnvironmentCost {
    let f = facts(spec, file);
    let book = file.book(&cost::price_keys(spec, &f));
    cost::environment_cost(spec, &f, &book, &file.currency, period)
}

fn period_of(month: Option<&str>) -> Result<Period, String> {
    let Some(m) = month else {
        return Ok(Period::month_of(Utc::now()));
    };
    let bad = || format!("`--month {m}`: expected a month like 2026-12");
    let (y, mo) = m.split_once('-').ok_or_else(bad)?;
    let (y, mo): (i32, u32) = (
        y.parse().map_err(|_| bad())?,
        mo.parse().map_err(|_| bad())?,
    );
    if !(1970..=9999).contains(&y) {
        return Err(bad());
    }
    let t = Utc
        .with_ymd_and_hms(y, mo, 1, 0, 0, 0)
        .single()
        .ok_or_else(bad)?;
    Ok(Period::month_of(t))
}

/// The spec of `env` at `rev` in the git repository holding `root`.
fn spec_at(root: &Path, rev: &str, env: &str) -> Result<EnvironmentSpec, String> {
    let m = engine::repo::git::Mirror::local(root).map_err(|e| format!("{e:#}"))?;
    let oid = m.resolve(rev).map_err(|e| format!("{e:#}"))?;
    if m.env_tree(oid, env)
        .map_err(|e| format!("{e:#}"))?
        .is_none()
    {
        return Err(format!("there is no environment `{env}` at {rev}"));
    }
    engine::repo::load_at(&m, oid, env)
        .map_err(|e| format!("{e:#}"))?
        .map_err(|es| {
            let shown: Vec<String> = es.iter().map(ToString::to_string).collect();
            format!("the spec at {rev} has errors:\n{}", shown.join("\n"))
        })
}

pub fn run(
    env: &str,
    root: &Path,
    against: Option<&str>,
    prices: &Path,
    month: Option<&str>,
) -> ExitCode {
    let period = match period_of(month) {
        Ok(p) => p,
        Err(e) => return fail(e, 2),
    };
    let name = prices.display().to_string();
    let text = match std::fs::metadata(prices).and_then(|m| {
        if m.len() > 1024 * 1024 {
            Err(std::io::Error::other("it is larger than 1 MiB"))
        } else {
            std::fs::read_to_string(prices)
        }
    }) {
        Ok(t) => t,
        Err(e) => return fail(format!("the price file {name}: {e}"), 2),
    };
    let file = match cost::parse_price_file(&name, &text) {
        Ok(f) => f,
        Err(e) => return fail(e, 2),
    };
    let Some(v) = crate::spec_tree::valid_tree(root) else {
        return ExitCode::FAILURE;
    };
    let Some((_, spec)) = v.environments.iter().find(|(n, _)| n == env) else {
        let names: Vec<&str> = v.environments.iter().map(|(n, _)| n.as_str()).collect();
        return fail(
            format!(
                "there is no environment `{env}` in {}; there are: {}",
                root.display(),
                names.join(", ")
            ),
            2,
        );
    };
    let after = price(spec, &file, period);
    print!("{}", cost::report_text(&after));
    if let Some(rev) = against {
        let base = match spec_at(root, rev, env) {
            Ok(s) => s,
            Err(e) => return fail(e, 2),
        };
        let before = price(&base, &file, period);
        let report =
            ChangeCostReport::of(Some(&before), &after, &spec.environment.cost, Vec::new());
        println!();
        print!("{}", cost::change_text(rev, &report));
        if report.verdict.blocked.is_some() {
            return ExitCode::FAILURE;
        }
    }
    if after.is_complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
