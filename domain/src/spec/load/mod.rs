//! From YAML files to an [`EnvironmentSpec`], collecting every error with its position rather
//! than stopping at the first.

mod autoscaling;
mod database;
mod environment;
mod fields;
mod network;
mod security;
mod slo;

use std::collections::HashMap;

use self::autoscaling::autoscaling_group;
use self::database::database;
use self::environment::environment;
use self::fields::{list, unique, Cx};
use self::network::{network_acl, subnet};
use self::security::security_group;
use self::slo::{monitoring, slo};
use super::model::*;
use super::yaml::{self, Node, Pos, Value};
use super::{SourceFile, SpecError};

/// The top-level keys of spec format v1.
pub const TOP_LEVEL: [&str; 8] = [
    "environment",
    "autoscaling_groups",
    "databases",
    "security_groups",
    "subnets",
    "network_acls",
    "slos",
    "monitoring",
];

fn named_list<T>(
    cx: &mut Cx,
    node: &Node,
    key: &str,
    what: &str,
    parse: impl Fn(&mut Cx, &Node, usize) -> Option<T>,
    name_of: impl Fn(&T) -> &str,
) -> Vec<T> {
    let mut out = Vec::new();
    let mut seen = HashMap::new();
    if let Some(items) = list(cx, node, key) {
        for (i, item) in items.iter().enumerate() {
            if let Some(v) = parse(cx, item, i) {
                let name = name_of(&v).to_owned();
                let before = cx.errors.len();
                unique(cx, &mut seen, &name, item.pos, what);
                if cx.errors.len() == before {
                    out.push(v);
                }
            }
        }
    }
    out
}

/// Loads one environment from its files (paths relative to the spec repository's root).
pub fn load_environment(
    folder: &str,
    files: &[SourceFile],
) -> Result<EnvironmentSpec, Vec<SpecError>> {
    let mut errors = Vec::new();
    // Which file set each top-level key, and where.
    let mut owners: HashMap<&str, (String, Pos)> = HashMap::new();
    let mut env = None;
    // Every section but `environment`, which comes in at the end.
    let mut spec = Sections::default();
    let mut sorted: Vec<&SourceFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut bytes = 0;
    for (index, file) in sorted.into_iter().enumerate() {
        let mut cx = Cx {
            file: &file.path,
            errors: &mut errors,
        };
        if let Some(why) = crate::spec::size_refusal(index, file.text.len(), bytes) {
            cx.err(Pos { line: 1, col: 1 }, why);
            continue;
        }
        bytes += file.text.len();
        let doc = match yaml::parse(&file.text) {
            Ok(d) => d,
            Err(e) => {
                cx.err(e.pos, e.message);
                continue;
            }
        };
        let Value::Map(entries) = &doc.value else {
            if !doc.is_null() {
                cx.err(
                    doc.pos,
                    format!(
                        "a spec file is a mapping of top-level keys ({}), found {}",
                        TOP_LEVEL.join(", "),
                        doc.kind()
                    ),
                );
            }
            continue;
        };
        for (k, v) in entries {
            let Value::Scalar { text: key, .. } = &k.value else {
                cx.err(k.pos, "top-level keys must be plain names");
                continue;
            };
            let Some(key) = TOP_LEVEL.iter().find(|t| **t == key.as_str()) else {
                let message = match names_powers(key) {
                    true => powers_message(key),
                    false => format!(
                        "unknown top-level key `{key}`; expected one of {}",
                        TOP_LEVEL.join(", ")
                    ),
                };
                cx.err(k.pos, message);
                continue;
            };
            if let Some((other, pos)) = owners.get(key) {
                cx.err(k.pos, format!("`{key}` is already set in {other}:{}; each top-level key belongs in one file", pos.line));
                continue;
            }
            owners.insert(key, (file.path.clone(), k.pos));
            match *key {
                "environment" => env = environment(&mut cx, v, folder),
                "autoscaling_groups" => {
                    spec.autoscaling_groups = named_list(
                        &mut cx,
                        v,
                        key,
                        "autoscaling group",
                        autoscaling_group,
                        |g| &g.name,
                    )
                }
                "databases" => {
                    spec.databases =
                        named_list(&mut cx, v, key, "database", database, |d| &d.identifier)
                }
                "security_groups" => {
                    spec.security_groups =
                        named_list(&mut cx, v, key, "security group", security_group, |s| {
                            &s.name
                        })
                }
                "subnets" => {
                    spec.subnets =
                        named_list(&mut cx, v, key, "subnet", subnet, |s| s.resource.text())
                }
                "network_acls" => {
                    spec.network_acls =
                        named_list(&mut cx, v, key, "network ACL", network_acl, |a| {
                            a.resource.text()
                        })
                }
                "slos" => spec.slos = named_list(&mut cx, v, key, "SLO", slo, |s| &s.name),
                "monitoring" => {
                    if let Some(m) = monitoring(&mut cx, v) {
                        spec.monitoring = m;
                    }
                }
                _ => unreachable!("every top-level key is handled"),
            }
        }
    }
    errors.extend(network::cross_check(
        &spec.subnets,
        &spec.network_acls,
        &spec.security_groups,
    ));
    // A group that failed to load leaves its tier out: no second error about that tier.
    let groups_complete = owners
        .get("autoscaling_groups")
        .is_none_or(|(file, _)| !errors.iter().any(|e| &e.file == file));
    errors.extend(slo::cross_check(
        &spec.slos,
        &spec.monitoring,
        groups_complete.then_some(spec.autoscaling_groups.as_slice()),
    ));
    errors.extend(crate::spec::folder::folder_name_error(folder));
    if env.is_none() && !owners.contains_key("environment") {
        errors.push(SpecError {
            file: format!("environments/{folder}/"),
            line: 1,
            col: 1,
            message: "no file of this environment sets the top-level key `environment`".into(),
        });
    }
    // No `environment` with no error: `environment` reports every problem it returns `None`
    // for, but for a name that is its folder's, whose problem is the folder's error above.
    match env {
        Some(environment) if errors.is_empty() => Ok(EnvironmentSpec {
            environment,
            autoscaling_groups: spec.autoscaling_groups,
            databases: spec.databases,
            security_groups: spec.security_groups,
            slos: spec.slos,
            monitoring: spec.monitoring,
            subnets: spec.subnets,
            network_acls: spec.network_acls,
        }),
        _ => {
            crate::spec::sort_errors(&mut errors);
            Err(errors)
        }
    }
}

#[derive(Default)]
struct Sections {
    autoscaling_groups: Vec<AutoscalingGroup>,
    databases: Vec<Database>,
    security_groups: Vec<SecurityGroup>,
    slos: Vec<Slo>,
    monitoring: Monitoring,
    subnets: Vec<Subnet>,
    network_acls: Vec<NetworkAcl>,
}

/// Keys that would name the AWS account, role or credentials an environment is reached with.
const POWERS: [&str; 18] = [
    "aws",
    "account",
    "account_id",
    "aws_account",
    "aws_account_id",
    "role",
    "role_arn",
    "plan_role_arn",
    "apply_role_arn",
    "assume_role",
    "assume_role_arn",
    "external_id",
    "session_name",
    "credentials",
    "profile",
    "aws_profile",
    "access_key_id",
    "secret_access_key",
];

/// Whether `key` would name the powers an environment is reached with.
pub(super) fn names_powers(key: &str) -> bool {
    POWERS.contains(&key.to_ascii_lowercase().as_str())
}

/// Why the spec may not name them: a change never chooses the powers it is applied with.
pub(super) fn powers_message(path: &str) -> String {
    format!(
        "`{path}`: the AWS account, roles and credentials an environment is reached with are the panel's to set (tierdeck.toml, [aws.environments.NAME]), never the spec's: a change never chooses the powers it is applied with"
    )
}
