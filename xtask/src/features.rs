//! `cargo xtask features`: one feature set for every build and test.
//!
//! Cargo resolves features per invocation: `cargo build -p tierdeck` and `cargo test -p
//! tierdeck-engine` can enable different features of the same dependency, and then that
//! dependency and everything above it compile twice (the AWS SDK included). The `workspace-hack`
//! crate enables the union on every native member; this check asks `cargo tree` what each
//! invocation of `scripts/test` and `scripts/demo` resolves and names every shared package
//! whose features differ between two of them, with the line to put in `workspace-hack`.

use std::{
    collections::{BTreeMap, BTreeSet},
    process::Command,
};

use anyhow::{bail, Context, Result};

use crate::site::{cargo_bin, workspace_root};

/// The native cargo invocations of `scripts/test` and `scripts/demo`, as `cargo tree`
/// arguments: no `dev` edges where no test target is built (dev-dependencies then take no
/// part in the resolution, as in the build itself).
const INVOCATIONS: &[(&str, &[&str])] = &[
    (
        "cargo xtask (the tool)",
        &["-p", "xtask", "-e", "normal,build"],
    ),
    (
        "the server build",
        &["-p", "tierdeck", "-e", "normal,build"],
    ),
    (
        "the demo's traffic generator",
        &["-p", "tierdeck-tests", "-e", "normal,build"],
    ),
    (
        "the unit tests",
        &[
            "-p",
            "tierdeck-domain",
            "-p",
            "tierdeck-engine",
            "-p",
            "tierdeck",
            "-p",
            "xtask",
            "-p",
            "tierdeck-app",
            "--features",
            "tierdeck-app/ssr",
            "-e",
            "normal,build,dev",
        ],
    ),
    (
        "the end-to-end tests",
        &["-p", "tierdeck-tests", "-e", "normal,build,dev"],
    ),
];

/// Packages left to differ, with why: unifying them would change behaviour, not only build
/// time. The engine's reqwest uses rustls without a built-in crypto provider (the panel installs
/// aws-lc-rs); given those features the tests' plain-HTTP client would panic with "No provider
/// set". It costs one more build of reqwest and the tests crate's few crates above it.
const MAY_DIFFER: &[(&str, &str)] = &[(
    "reqwest",
    "its TLS features would make the tests' client need a crypto provider",
)];

/// `host name vX.Y.Z` or `target name vX.Y.Z` → the feature lists it is built with. What proc
/// macros and build scripts use is built for the host with features of its own (cargo's
/// resolver 2), so the two sides are told apart: `workspace-hack` unifies the target side with
/// `[dependencies]` and the host side with `[build-dependencies]`.
type Resolved = BTreeMap<String, BTreeSet<String>>;

pub fn check() -> Result<()> {
    let mut resolved = Vec::new();
    for (name, args) in INVOCATIONS {
        resolved.push((*name, tree(args)?));
    }
    let differences = differences(&resolved);
    if differences.is_empty() {
        println!(
            "ok: {} cargo invocations resolve every shared package alike",
            INVOCATIONS.len()
        );
        return Ok(());
    }
    for d in &differences {
        eprintln!("{d}");
    }
    bail!(
        "{} shared package(s) would compile more than once; add the union of their features to \
         workspace-hack/Cargo.toml ([dependencies] for `target`, [build-dependencies] for `host`)",
        differences.len()
    )
}

fn tree(args: &[&str]) -> Result<Resolved> {
    let out = Command::new(cargo_bin())
        .current_dir(workspace_root())
        .arg("tree")
        .args(args)
        .args(["--format", "{p}|{f}", "--charset", "ascii"])
        .output()
        .context("running `cargo tree`")?;
    if !out.status.success() {
        bail!(
            "`cargo tree {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(parse_tree(&String::from_utf8_lossy(&out.stdout)))
}

/// Reads `cargo tree --charset ascii --format '{p}|{f}'`, four columns a level:
/// `|   |-- name vX (proc-macro)|a,b (*)`, with `[build-dependencies]` headers. A proc macro's
/// subtree and a build-dependencies section are the host's.
fn parse_tree(text: &str) -> Resolved {
    let mut resolved = Resolved::new();
    // The depth at and below which lines are the host's, while inside such a part.
    let mut host_below: Option<usize> = None;
    for line in text.lines() {
        let indent = line
            .find(|c: char| c.is_ascii_alphanumeric() || c == '[')
            .unwrap_or(line.len());
        let depth = indent / 4;
        let rest = &line[indent..];
        if rest.is_empty() {
            continue;
        }
        if host_below.is_some_and(|d| depth <= d) {
            host_below = None;
        }
        if rest.starts_with('[') {
            // `[build-dependencies]` at its children's column minus one level.
            if rest.starts_with("[build-dependencies]") && host_below.is_none() {
                host_below = Some(depth);
            }
            continue;
        }
        let Some((package, features)) = rest.split_once('|') else {
            continue;
        };
        let mut words = package.split_whitespace();
        let (Some(name), Some(version)) = (words.next(), words.next()) else {
            continue;
        };
        let proc_macro = package.contains("(proc-macro)");
        let side = if host_below.is_some() || proc_macro {
            "host"
        } else {
            "target"
        };
        let features = features.trim().trim_end_matches("(*)").trim();
        resolved
            .entry(format!("{side} {name} {version}"))
            .or_default()
            .insert(features.to_string());
        if proc_macro && host_below.is_none() {
            host_below = Some(depth);
        }
    }
    resolved
}

/// Every package that two invocations resolve with different features, with what each has.
fn differences(resolved: &[(&str, Resolved)]) -> Vec<String> {
    let mut packages: BTreeSet<&String> = BTreeSet::new();
    for (_, r) in resolved {
        packages.extend(r.keys());
    }
    let mut found = Vec::new();
    for package in packages {
        let seen: Vec<(&str, &BTreeSet<String>)> = resolved
            .iter()
            .filter_map(|(name, r)| r.get(package).map(|f| (*name, f)))
            .collect();
        if seen.windows(2).all(|w| w[0].1 == w[1].1) {
            continue;
        }
        let name = package.split_whitespace().nth(1).unwrap_or_default();
        if MAY_DIFFER.iter().any(|(allowed, _)| *allowed == name) {
            continue;
        }
        let mut union = BTreeSet::new();
        for (_, sets) in &seen {
            for set in sets.iter() {
                union.extend(set.split(',').filter(|f| !f.is_empty()).map(str::to_string));
            }
        }
        let mut text = format!("{package}: features differ");
        for (name, sets) in &seen {
            let sets: Vec<String> = sets.iter().map(|s| format!("[{s}]")).collect();
            text.push_str(&format!("\n    {name}: {}", sets.join(" ")));
        }
        let union: Vec<String> = union.into_iter().map(|f| format!("\"{f}\"")).collect();
        text.push_str(&format!("\n    union: [{}]", union.join(", ")));
        found.push(text);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cargo_tree_lines_telling_host_from_target() {
        let r = parse_tree(
            "tierdeck v0.1.0 (/w/server)|\n\
             |-- bitflags v2.13.2|std (*)\n\
             |-- serde_derive v1.0.0 (proc-macro)|default\n\
             |   `-- syn v2.0.1|full,parsing\n\
             |       `-- proc-macro2 v1.0.0|default\n\
             |-- syn v2.0.1|parsing\n\
             |   `-- quote v1.0.0|\n\
             |   [build-dependencies]\n\
             |   `-- cc v1.0.0|parallel\n\
             |       `-- shlex v1.0.0|\n\
             `-- typenum v1.0.0|\n\
             \n",
        );
        let set = |s: &[&str]| s.iter().map(|f| f.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(r["target bitflags v2.13.2"], set(&["std"]));
        assert_eq!(r["host serde_derive v1.0.0"], set(&["default"]));
        assert_eq!(r["host syn v2.0.1"], set(&["full,parsing"]));
        assert_eq!(r["host proc-macro2 v1.0.0"], set(&["default"]));
        assert_eq!(r["target syn v2.0.1"], set(&["parsing"]));
        assert_eq!(r["target quote v1.0.0"], set(&[""]));
        assert_eq!(r["host cc v1.0.0"], set(&["parallel"]));
        assert_eq!(r["host shlex v1.0.0"], set(&[""]));
        assert_eq!(
            r["target typenum v1.0.0"],
            set(&[""]),
            "the build section ended"
        );
        assert_eq!(r["target tierdeck v0.1.0"], set(&[""]));
    }

    #[test]
    fn names_packages_whose_features_differ_with_their_union() {
        let build = parse_tree("bitflags v2.13.2|\nserde v1.0.0|derive,std\n");
        let tests = parse_tree("bitflags v2.13.2|std\nserde v1.0.0|derive,std\ntempfile v3|\n");
        let found = differences(&[("build", build), ("tests", tests)]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("target bitflags v2.13.2: features differ"));
        assert!(found[0].contains("build: []"), "{}", found[0]);
        assert!(found[0].contains("tests: [std]"), "{}", found[0]);
        assert!(found[0].contains("union: [\"std\"]"), "{}", found[0]);
    }

    #[test]
    fn a_package_left_to_differ_is_not_reported() {
        let build = parse_tree("reqwest v0.12.28|json,rustls\n");
        let tests = parse_tree("reqwest v0.12.28|json\n");
        assert!(differences(&[("build", build), ("tests", tests)]).is_empty());
    }

    #[test]
    fn packages_of_one_invocation_only_never_differ() {
        let a = parse_tree("tempfile v3|default\n");
        let b = parse_tree("serde v1|std\n");
        assert!(differences(&[("a", a), ("b", b)]).is_empty());
    }
}
