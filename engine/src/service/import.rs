//! Import: reading what runs in an account for `tierdeck import`, through the adapters and the
//! environment's plan role the planner uses, and planning the spec written from it against
//! the same account (the round trip). What the credentials may not read is listed, naming the
//! IAM action, and the rest is read.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

use domain::guardrails::Violation;
use domain::import::{Context, Found, FoundDatabase, Preview, Selector, Unexpressed, Unread};
use domain::spec::{load_environment, AwsRef, EnvName, EnvironmentSpec, SourceFile, SpecError};
use domain::Role;

use crate::auth::Caller;
use crate::aws::autoscaling::{AutoScalingApi, InstanceSource};
use crate::aws::clients::AwsClients;
use crate::aws::cloudwatch::CloudWatchApi;
use crate::aws::ec2::Ec2Api;
use crate::aws::rds::RdsApi;
use crate::aws::{AwsErrorKind, AwsResult};
use crate::error::{ServiceError, ServiceResult};
use crate::service::plans::{Planned, Plans};
use crate::settings::EngineSettings;

/// The most rounds of reading the groups that security groups' rules name as sources (a chain
/// of load balancers and tiers is a few).
const SOURCE_ROUNDS: usize = 8;

/// What an import read, and what the reading cost.
#[derive(Debug, Clone)]
pub struct Reading {
    pub found: Found,
    pub elapsed: Duration,
    /// Requests sent to AWS, each retry counted.
    pub calls: u64,
}

/// An import: what was read, the files written from it, and how they stand.
#[derive(Debug, Clone)]
pub struct Import {
    pub reading: Reading,
    /// Names `--names` gave that are neither a group nor a database.
    pub unmatched: Vec<String>,
    /// `environments/ENV/` files by name, in the order they are written.
    pub files: Vec<(String, String)>,
    /// What runs that the spec cannot say.
    pub unexpressed: Vec<Unexpressed>,
    /// The files read back as the spec (`tierdeck validate`): the spec, or its errors.
    pub spec: Result<EnvironmentSpec, Vec<SpecError>>,
    /// The round trip: the spec planned against the account it was read from, or why it
    /// could not be.
    pub round_trip: Option<Result<Planned, String>>,
    /// The guardrails what runs breaks, judged as a first apply is (its own rules and the
    /// panel's floor).
    pub violations: Vec<Violation>,
}

impl Import {
    /// "No changes", with everything read.
    pub fn is_clean(&self) -> bool {
        self.reading.found.unread.is_empty() && self.unmatched.is_empty() && self.round_trip_clean()
    }

    /// The round trip planned to nothing.
    pub fn round_trip_clean(&self) -> bool {
        matches!(&self.round_trip, Some(Ok(p)) if p.plan.is_empty())
    }
}

/// What an import came to.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// No group and no database matched (or none could be read: see the reading's `unread`).
    NothingMatched(Reading),
    Imported(Box<Import>),
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl Reading {
    /// What was read, counted: `2 Auto Scaling groups, 1 database, …`.
    pub fn counts(&self) -> String {
        let f = &self.found;
        [
            plural(f.groups.len(), "Auto Scaling group", "Auto Scaling groups"),
            plural(f.databases.len(), "database", "databases"),
            plural(f.security_groups.len(), "security group", "security groups"),
            plural(f.subnets.len(), "subnet", "subnets"),
            plural(f.network_acls.len(), "network ACL", "network ACLs"),
        ]
        .join(", ")
    }
}

impl Outcome {
    /// The import as the page shows it.
    pub fn preview(&self, env: &EnvName, region: &str, selector: &Selector) -> Preview {
        let mut p = Preview {
            env: env.to_string(),
            region: region.to_owned(),
            selector: selector.text(),
            ..Preview::default()
        };
        let reading = match self {
            Outcome::NothingMatched(r) => r,
            Outcome::Imported(i) => &i.reading,
        };
        p.read_ms = reading.elapsed.as_millis() as u64;
        p.aws_calls = reading.calls;
        p.unread = reading.found.unread.clone();
        let Outcome::Imported(i) = self else {
            return p;
        };
        p.counts = reading.counts();
        p.files = i.files.clone();
        p.unmatched = i.unmatched.clone();
        p.unexpressed = i.unexpressed.clone();
        if let Err(errors) = &i.spec {
            p.spec_errors = errors.iter().map(ToString::to_string).collect();
        }
        match &i.round_trip {
            Some(Ok(planned)) => {
                p.round_trip = planned
                    .plan
                    .operations
                    .iter()
                    .map(ToString::to_string)
                    .chain(planned.plan.errors.iter().map(|e| format!("error: {e}")))
                    .collect();
                p.round_trip_clean = planned.plan.is_empty();
            }
            Some(Err(why)) => p.round_trip_failed = Some(why.clone()),
            None => {}
        }
        p.violations = i.violations.iter().map(ToString::to_string).collect();
        p
    }
}

/// Reading an account for an import, and the round trip.
#[derive(Clone, Copy)]
pub struct Imports<'a> {
    pub(crate) aws: &'a AwsClients,
    pub(crate) settings: &'a EngineSettings,
    pub(crate) plans: Plans<'a>,
}

/// A read that access denied does not stop: `Ok(None)` and the refusal listed.
async fn allowed<T>(
    what: &str,
    read: impl Future<Output = AwsResult<T>>,
    unread: &mut Vec<Unread>,
) -> ServiceResult<Option<T>> {
    match read.await {
        Ok(v) => Ok(Some(v)),
        Err(e) => match &e.kind {
            AwsErrorKind::AccessDenied { action } => {
                unread.push(Unread {
                    what: what.to_owned(),
                    action: action.clone(),
                    message: e.message.clone(),
                });
                Ok(None)
            }
            _ => Err(e.into()),
        },
    }
}

impl Imports<'_> {
    /// Reads what `selector` picks in `region` with environment `env`'s plan role: the groups
    /// with their policies, the alarms calling them and their scheduled actions, the
    /// databases, the security groups both use and those their rules name, the subnets they
    /// sit in and the network ACLs guarding those.
    pub async fn read(
        &self,
        caller: &Caller,
        env: &EnvName,
        region: &str,
        selector: &Selector,
    ) -> ServiceResult<Reading> {
        caller.require(Role::Admin)?;
        let started = Instant::now();
        let (found, calls) =
            crate::aws::calls::counted(self.read_all(env.as_str(), region, selector)).await;
        Ok(Reading {
            found: found?,
            elapsed: started.elapsed(),
            calls,
        })
    }

    async fn read_all(&self, env: &str, region: &str, selector: &Selector) -> ServiceResult<Found> {
        let c = self
            .aws
            .read(env, region, self.settings.aws.max_attempts)
            .await;
        let mut unread = Vec::new();
        let (groups, databases) = futures::join!(
            c.autoscaling.discover_groups(selector),
            c.rds.discover_instances(selector)
        );
        let groups = allowed("autoscaling groups", async { groups }, &mut unread)
            .await?
            .unwrap_or_default();
        let databases = allowed("databases", async { databases }, &mut unread)
            .await?
            .unwrap_or_default();
        let mut found = Found::default();
        if groups.is_empty() && databases.is_empty() {
            found.unread = unread;
            return Ok(found);
        }

        let arns: Vec<String> = groups
            .iter()
            .flat_map(|d| d.group.policies.iter().map(|p| p.arn.clone()))
            .collect();
        let alarms = allowed(
            "the alarms that call the scaling policies",
            c.cloudwatch.alarms_calling(&arns),
            &mut unread,
        )
        .await?;
        found.alarms_read = alarms.is_some();
        found.alarms = alarms.unwrap_or_default();

        // Each launch template version once.
        let mut templates = Vec::new();
        for d in &groups {
            if let InstanceSource::Template(t) = &d.source {
                if !templates.contains(t) {
                    templates.push(t.clone());
                }
            }
        }
        let mut template_settings = Vec::new();
        for t in &templates {
            let label = t.name.clone().or(t.id.clone()).unwrap_or_default();
            let what =
                format!("launch template {label} (the groups' security groups and instance type)");
            let s = allowed(&what, c.ec2.template_settings(t), &mut unread).await?;
            template_settings.push((t.clone(), s.flatten()));
        }

        // Security groups: by id from the templates and databases, by name from the templates.
        let mut ids: BTreeSet<String> = BTreeSet::new();
        let mut names: BTreeSet<String> = BTreeSet::new();
        for (_, s) in &template_settings {
            if let Some(s) = s {
                ids.extend(s.security_group_ids.iter().cloned());
                names.extend(s.security_group_names.iter().cloned());
            }
        }
        for d in &databases {
            ids.extend(d.security_group_ids.iter().cloned());
        }
        let ids: Vec<String> = ids.into_iter().collect();
        let id_names: BTreeMap<String, String> = allowed(
            "the security groups of the groups and databases",
            c.ec2.security_group_names(&ids),
            &mut unread,
        )
        .await?
        .unwrap_or_default()
        .into_iter()
        .collect();
        names.extend(id_names.values().cloned());
        let name_of = |id: &String| id_names.get(id).cloned().unwrap_or_else(|| id.clone());

        for d in groups {
            let mut g = d.group;
            match &d.source {
                InstanceSource::Template(t) => {
                    let label = t.name.clone().or(t.id.clone()).unwrap_or_default();
                    g.launched_from =
                        Some(format!("launch template {label} version {}", t.version));
                    if let Some((_, Some(s))) = template_settings.iter().find(|(x, _)| x == t) {
                        g.instance_type = s.instance_type.clone();
                        g.security_groups = s
                            .security_group_ids
                            .iter()
                            .map(name_of)
                            .chain(s.security_group_names.iter().cloned())
                            .collect();
                    }
                }
                InstanceSource::Mixed(types) => {
                    g.launched_from = Some(format!(
                        "a mixed instances policy ({}): no one instance type, and its security groups are not read",
                        types.join(", ")
                    ));
                }
                InstanceSource::LaunchConfiguration(lc) => {
                    g.launched_from = Some(format!(
                        "launch configuration {lc} (not read: AWS retires them for launch templates)"
                    ));
                }
                InstanceSource::Unknown => {}
            }
            found.groups.push(g);
        }
        for d in databases {
            found.databases.push(FoundDatabase {
                security_groups: d.security_group_ids.iter().map(name_of).collect(),
                database: d.database,
                tags: d.tags,
                subnet_ids: d.subnet_ids,
            });
        }

        // The security groups, and the groups their rules name as sources, round by round.
        let mut wanted: Vec<String> = names.into_iter().collect();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for _ in 0..SOURCE_ROUNDS {
            wanted.retain(|n| seen.insert(n.clone()));
            if wanted.is_empty() {
                break;
            }
            let Some(read) = allowed(
                "the security groups and their rules",
                c.ec2.describe_security_groups(&wanted),
                &mut unread,
            )
            .await?
            else {
                break;
            };
            wanted = read
                .iter()
                .flat_map(|g| g.ingress.iter())
                .filter_map(|r| match &r.source {
                    domain::spec::Source::FromGroup(n) => Some(n.clone()),
                    domain::spec::Source::Cidr(_) => None,
                })
                .filter(|n| !seen.contains(n))
                .collect();
            wanted.sort();
            wanted.dedup();
            found.security_groups.extend(read);
        }

        let mut subnet_ids: Vec<String> = found
            .groups
            .iter()
            .flat_map(|g| g.subnet_ids.iter().cloned())
            .chain(
                found
                    .databases
                    .iter()
                    .flat_map(|d| d.subnet_ids.iter().cloned()),
            )
            .collect();
        subnet_ids.sort();
        subnet_ids.dedup();
        if !subnet_ids.is_empty() {
            let refs: Vec<AwsRef> = subnet_ids.iter().cloned().map(AwsRef::Id).collect();
            found.subnets = allowed("subnets", c.ec2.describe_subnets(&refs), &mut unread)
                .await?
                .unwrap_or_default();
            found.network_acls = allowed(
                "the network ACLs of the subnets",
                c.ec2.network_acls_of_subnets(&subnet_ids),
                &mut unread,
            )
            .await?
            .unwrap_or_default();
        }
        found.unread = unread;
        Ok(found)
    }

    /// An import of what `selector` picks: read ([`Self::read`]), written as the spec's files,
    /// read back as the spec, planned against the same account and judged by the guardrails.
    /// The files' comments name the command line that writes the same files.
    pub async fn import(
        &self,
        caller: &Caller,
        env: &EnvName,
        region: &str,
        selector: &Selector,
    ) -> ServiceResult<Outcome> {
        // The round trip plans where the panel reads the environment: the same region.
        if let Some(configured) = self
            .aws
            .access(env.as_str())
            .and_then(|a| a.region.as_deref())
        {
            if configured != region {
                caller.require(Role::Admin)?;
                return Err(ServiceError::Rejected(format!(
                    "the panel reads {env} in {configured} ([aws.environments.{env}] region), not {region}: import from {configured}, or change the configuration first"
                )));
            }
        }
        let reading = self.read(caller, env, region, selector).await?;
        if reading.found.is_empty() {
            return Ok(Outcome::NothingMatched(reading));
        }
        let floor = &self.settings.policy;
        let command = format!(
            "tierdeck import {env} --region {region} {}",
            selector.text()
        );
        let written = domain::import::write(
            &reading.found,
            &Context {
                env: env.as_str(),
                region,
                command: &command,
                floor,
            },
        );
        let sources: Vec<SourceFile> = written
            .files
            .iter()
            .map(|(name, text)| SourceFile {
                path: format!("environments/{env}/{name}"),
                text: text.clone(),
            })
            .collect();
        let spec = load_environment(env.as_str(), &sources);
        let (round_trip, violations) = match &spec {
            Ok(spec) => {
                let planned = self.plan_written(spec).await.map_err(|e| e.to_string());
                let policy = domain::policy::judge(domain::policy::Applied::Never, spec, floor);
                (Some(planned), domain::guardrails::check(spec, &policy))
            }
            Err(_) => (None, Vec::new()),
        };
        // Names that matched nothing, where both kinds could be read.
        let unmatched = match selector {
            Selector::Names { names } if reading.found.unread.is_empty() => names
                .iter()
                .filter(|n| {
                    !reading.found.groups.iter().any(|g| &g.name == *n)
                        && !reading
                            .found
                            .databases
                            .iter()
                            .any(|d| &d.database.identifier == *n)
                })
                .cloned()
                .collect(),
            _ => Vec::new(),
        };
        Ok(Outcome::Imported(Box::new(Import {
            unmatched,
            reading,
            files: written.files,
            unexpressed: written.unexpressed,
            spec,
            round_trip,
            violations,
        })))
    }

    /// The round trip: `spec`, written from what runs, planned against the same account by the
    /// planner (no group's desired capacity counts as edited).
    pub async fn plan_written(&self, spec: &EnvironmentSpec) -> ServiceResult<Planned> {
        self.plans.plan_spec(spec, &BTreeSet::new()).await
    }
}

#[cfg(test)]
mod tests {
    use domain::import::{write, Context, Selector};
    use domain::observed::{Comparison, ObservedScheduledAction, PolicySettings};
    use domain::spec::{load_environment, SourceFile};

    use super::Outcome;
    use crate::auth::Caller;
    use crate::aws::autoscaling::AutoScalingApi;
    use crate::aws::cloudwatch::AlarmSnapshot;
    use crate::testing::{TestEngine, SHOP};

    /// shop-web as tierdeck left it: its step pair, the alarms calling it, one scheduled action.
    async fn scaled(t: &TestEngine) {
        let step = |adjustment| PolicySettings::Step {
            adjustment,
            cooldown_seconds: 300,
        };
        for (policy, settings) in [("out", step(1)), ("in", step(-1))] {
            let name = format!("tierdeck-shop-web-cpu-{policy}");
            t.aws
                .put_policy("shop-web", &name, &settings)
                .await
                .unwrap();
        }
        for (alarm, policy, comparison, threshold) in [
            ("high", "out", Comparison::GreaterThanOrEqual, 50.0),
            ("low", "in", Comparison::LessThanOrEqual, 30.0),
        ] {
            let arn = t
                .aws
                .policy_arn("shop-web", &format!("tierdeck-shop-web-cpu-{policy}"))
                .await
                .unwrap();
            let name = format!("tierdeck-shop-web-cpu-{alarm}");
            t.aws.state().alarms.insert(
                name.clone(),
                AlarmSnapshot {
                    name,
                    threshold,
                    comparison: Some(comparison),
                    actions: vec![arn],
                },
            );
        }
        t.aws
            .put_scheduled_action(
                "shop-web",
                &ObservedScheduledAction {
                    name: "web-night".into(),
                    recurrence: "0 0 * * *".into(),
                    timezone: "Asia/Seoul".into(),
                    min: Some(2),
                    max: Some(4),
                    desired: Some(2),
                },
            )
            .await
            .unwrap();
    }

    fn spec_of(found: &domain::import::Found) -> (domain::spec::EnvironmentSpec, Vec<String>) {
        let imported = write(
            found,
            &Context {
                env: "shop",
                region: "ap-northeast-2",
                command: "tierdeck import shop",
                floor: &domain::policy::Floor::default(),
            },
        );
        let files: Vec<SourceFile> = imported
            .files
            .iter()
            .map(|(n, t)| SourceFile {
                path: format!("environments/shop/{n}"),
                text: t.clone(),
            })
            .collect();
        let spec = load_environment("shop", &files).expect("the written spec loads");
        let listed = imported.unexpressed.iter().map(|u| u.to_string()).collect();
        (spec, listed)
    }

    #[tokio::test]
    async fn what_is_imported_plans_to_no_changes_and_a_refused_read_is_listed_with_the_rest_kept()
    {
        let t = TestEngine::new(SHOP).await;
        scaled(&t).await;
        let imports = t.engine.imports();
        let env = "shop".parse().unwrap();
        let select = Selector::Names {
            names: vec!["shop-web".into(), "shop-db".into()],
        };
        let Outcome::Imported(import) = imports
            .import(&Caller::System, &env, "ap-northeast-2", &select)
            .await
            .unwrap()
        else {
            panic!("nothing matched");
        };
        assert!(import.is_clean(), "{:#?}", import.round_trip);
        // The page shows the same.
        let preview = Outcome::Imported(import.clone()).preview(&env, "ap-northeast-2", &select);
        assert!(preview.round_trip_clean && preview.round_trip.is_empty());
        assert_eq!(preview.files, import.files);
        assert_eq!(preview.selector, "--names shop-web shop-db");
        assert!(
            preview.files[1].1.starts_with(
                "# Imported from the live account by `tierdeck import shop --region ap-northeast-2 --names shop-web shop-db`."
            ),
            "{}",
            preview.files[1].1
        );
        assert!(import.unexpressed.is_empty(), "{:?}", import.unexpressed);
        assert_eq!(import.reading.found.alarms.len(), 2);
        let spec = import.spec.as_ref().unwrap();
        assert!(spec.autoscaling_groups[0].cpu_scaling.is_some());
        // What runs below the guardrails is said: one instance, one zone.
        let rules: Vec<&str> = import.violations.iter().map(|v| v.rule.as_str()).collect();
        assert_eq!(rules, ["min-instances", "multi-az"]);

        // Without cloudwatch:DescribeAlarms the thresholds are unknown: listed, the rest read.
        t.aws.deny("DescribeAlarms");
        let read = imports
            .read(&Caller::System, &env, "ap-northeast-2", &select)
            .await
            .unwrap();
        let unread: Vec<(&str, &str)> = read
            .found
            .unread
            .iter()
            .map(|u| (u.what.as_str(), u.action.as_str()))
            .collect();
        assert_eq!(
            unread,
            [(
                "the alarms that call the scaling policies",
                "DescribeAlarms"
            )]
        );
        let (spec, listed) = spec_of(&read.found);
        assert_eq!(spec.autoscaling_groups.len(), 1);
        assert_eq!(spec.databases.len(), 1);
        assert!(spec.autoscaling_groups[0].cpu_scaling.is_none());
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert!(
            listed[0].contains("its alarms could not be read"),
            "{listed:?}"
        );

        // Nothing matching is said so.
        let none = imports
            .import(
                &Caller::System,
                &env,
                "ap-northeast-2",
                &Selector::Prefix {
                    prefix: "other-".into(),
                },
            )
            .await
            .unwrap();
        assert!(matches!(none, Outcome::NothingMatched(r) if r.found.is_empty()));
    }
}
