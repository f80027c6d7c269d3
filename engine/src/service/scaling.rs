//! Scaling history: a poller that snapshots each group of each environment when its capacity
//! changes and keeps Auto Scaling's activities; the history with tierdeck's applies and the
//! scheduled actions that fired, for the Scaling page and the API.

use std::collections::HashMap;
use std::time::Duration;

use chrono::DateTime;
use domain::scaling::{
    expected_firings, firings, Activity, AppliedPeriod, ApplyMark, GroupHistory, ScalingHistory,
    Snapshot,
};
use domain::spec::EnvName;
use domain::spec::EnvironmentSpec;
use domain::time::environment_zone;
use domain::Role;

use crate::auth::Caller;
use crate::aws::autoscaling::{self as asg, AutoScalingApi};
use crate::aws::clients::AwsClients;
use crate::clock::Clock;
use crate::error::{ServiceError, ServiceResult};
use crate::service::spec_reads::Specs;
use crate::settings::EngineSettings;
use crate::store::scaling::{self, ActivityRow, SnapshotRow};
use crate::store::Store;
use crate::store::{format_time, repo as repo_store, time_column, time_column_opt};

fn unix(t: &str) -> i64 {
    DateTime::parse_from_rfc3339(t)
        .map(|t| t.timestamp())
        .unwrap_or_default()
}

fn count(v: i64) -> u32 {
    v.clamp(0, i64::from(u32::MAX)) as u32
}

/// The longest history asked for: 90 days.
const MAX_HOURS: u32 = 24 * 90;

/// The most applies whose schedules one history reads (each one's spec is loaded).
const MAX_APPLIED_PERIODS: i64 = 100;

/// Scaling history.
#[derive(Clone, Copy)]
pub struct Scaling<'a> {
    pub(crate) store: &'a Store,
    pub(crate) settings: &'a EngineSettings,
    pub(crate) aws: &'a AwsClients,
    pub(crate) specs: Specs<'a>,
    pub(crate) clock: &'a dyn Clock,
}

impl Scaling<'_> {
    /// The spec of each environment at the branch head (environments whose spec has errors are
    /// left out).
    async fn head_specs(&self) -> ServiceResult<Vec<std::sync::Arc<EnvironmentSpec>>> {
        let (envs, head) = {
            let mut conn = self.store.pool().acquire().await?;
            (
                repo_store::environments(&mut conn).await?,
                repo_store::state(&mut conn)
                    .await?
                    .and_then(|s| s.head_commit),
            )
        };
        let Some(head) = head else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for e in envs {
            match self.specs.spec_at(&e.name, &head).await {
                Ok(spec) => out.push(spec),
                Err(ServiceError::Internal(err)) => return Err(ServiceError::Internal(err)),
                Err(_) => {}
            }
        }
        Ok(out)
    }

    /// One pass: snapshot every group whose capacity changed; record new activities. Returns
    /// the snapshots written.
    pub async fn poll_scaling(&self) -> ServiceResult<usize> {
        let mut written = 0;
        for spec in self.head_specs().await? {
            let region = self.aws.region_of(&spec);
            let clients = self
                .aws
                .read(
                    spec.environment.name.as_str(),
                    &region,
                    self.settings.aws.max_attempts,
                )
                .await;
            let env = spec.environment.name.clone();
            let names: Vec<String> = spec
                .autoscaling_groups
                .iter()
                .map(|g| g.name.to_string())
                .collect();
            // The activities since an hour before now (status changes of recent ones come
            // in) or the start of the oldest one still in progress here, whichever is older;
            // AWS's six weeks on the environment's first poll.
            let since = {
                let mut conn = self.store.pool().acquire().await?;
                let now = self.clock.now().timestamp();
                if scaling::has_history(&mut conn, &env).await? {
                    let unfinished = scaling::oldest_unfinished(&mut conn, &env).await?;
                    (now - 3600).min(unfinished.as_deref().map_or(i64::MAX, unix))
                } else {
                    now - 42 * 86_400
                }
            };
            let (lives, read) = futures::try_join!(
                clients.autoscaling.capacities(&names),
                clients.autoscaling.scaling_activities(&names, since)
            )?;
            let mut activities: HashMap<String, Vec<asg::Activity>> = HashMap::new();
            for a in read {
                activities.entry(a.group.clone()).or_default().push(a);
            }
            for g in &spec.autoscaling_groups {
                let Some(live) = lives.iter().find(|l| l.name == g.name) else {
                    continue;
                };
                let snapshot = SnapshotRow {
                    group_name: g.name.to_string(),
                    at: self.clock.now_text(),
                    min: i64::from(live.capacity.min),
                    max: i64::from(live.capacity.max),
                    desired: i64::from(live.capacity.desired),
                    in_service: i64::from(live.instances.in_service),
                };
                let own = activities.remove(g.name.as_str()).unwrap_or_default();
                let unchanged = |l: Option<SnapshotRow>| {
                    l.is_some_and(|l| {
                        (l.min, l.max, l.desired, l.in_service)
                            == (
                                snapshot.min,
                                snapshot.max,
                                snapshot.desired,
                                snapshot.in_service,
                            )
                    })
                };
                // Nothing new, nothing written: a poll of an idle shop commits nothing (and so
                // leaves the pages' kept reads standing).
                if own.is_empty() {
                    let mut conn = self.store.pool().acquire().await?;
                    if unchanged(scaling::latest(&mut conn, &env, &g.name).await?) {
                        continue;
                    }
                }
                // Read again under the write lock: an apply's own poll may run beside this one.
                let mut tx = self.store.begin_write().await?;
                if !unchanged(scaling::latest(&mut tx, &env, &g.name).await?) {
                    scaling::insert_snapshot(&mut tx, &env, &snapshot).await?;
                    written += 1;
                }
                for a in own {
                    scaling::insert_activity(
                        &mut tx,
                        &env,
                        &ActivityRow {
                            activity_id: a.id,
                            group_name: a.group,
                            status: a.status,
                            description: a.description,
                            cause: a.cause,
                            started_at: a.started_at,
                            ended_at: a.ended_at,
                        },
                    )
                    .await?;
                }
                tx.commit().await?;
            }
        }
        Ok(written)
    }

    /// Polls every `interval` and drops history older than `retention`, for ever.
    pub async fn scaling_poller(self, interval: Duration, retention: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.poll_scaling().await {
                tracing::warn!(error = %e, "scaling history poll failed");
            }
            let before =
                self.clock.now() - chrono::Duration::from_std(retention).unwrap_or_default();
            if let Ok(mut conn) = self.store.pool().acquire().await {
                if let Err(e) = scaling::prune(&mut conn, &format_time(before)).await {
                    tracing::warn!(error = %e, "pruning scaling history failed");
                }
            }
        }
    }

    /// The scaling history of `env` over the last `hours`.
    pub async fn scaling_history(
        &self,
        caller: &Caller,
        env: &EnvName,
        hours: u32,
    ) -> ServiceResult<ScalingHistory> {
        let env = env.as_str();
        caller.require(Role::Viewer)?;
        // Bounded once, for the history and the schedule marks alike: the preview below walks
        // every hour it is given.
        let hours = hours.clamp(1, MAX_HOURS);
        let until = self.clock.now();
        let since = until - chrono::Duration::hours(i64::from(hours));
        let since_text = format_time(since);
        let (snapshots, activities, applies, rollout_events, head) = {
            let mut conn = self.store.pool().acquire().await?;
            super::known_environment(&mut conn, env).await?;
            (
                scaling::snapshots_since(&mut conn, env, &since_text).await?,
                scaling::activities_since(&mut conn, env, &since_text).await?,
                scaling::applies_since(&mut conn, env, &since_text).await?,
                scaling::rollout_events_since(&mut conn, env, &since_text).await?,
                repo_store::state(&mut conn)
                    .await?
                    .and_then(|s| s.head_commit),
            )
        };
        let mut groups: Vec<GroupHistory> = Vec::new();
        for s in snapshots {
            let snap = Snapshot {
                at_unix: unix(&s.at),
                min: count(s.min),
                max: count(s.max),
                desired: count(s.desired),
                in_service: count(s.in_service),
            };
            match groups.last_mut() {
                Some(g) if g.group == s.group_name => g.snapshots.push(snap),
                _ => groups.push(GroupHistory {
                    group: s.group_name,
                    snapshots: vec![snap],
                }),
            }
        }
        // The scheduled actions that fired in the range: expected by the schedule of each
        // commit applied (from when its apply finished), observed in Auto Scaling's activities.
        let applied = {
            let mut conn = self.store.pool().acquire().await?;
            scaling::applied_commits(&mut conn, env, &since_text, MAX_APPLIED_PERIODS).await?
        };
        let mut specs: Vec<(i64, String, std::sync::Arc<EnvironmentSpec>)> = Vec::new();
        for (finished, commit) in applied {
            if specs.last().is_some_and(|(_, c, _)| *c == commit) {
                continue;
            }
            match self.specs.specs_at(env, &commit, None).await {
                Ok((spec, _)) => specs.push((unix(&finished), commit, spec)),
                Err(ServiceError::Internal(err)) => return Err(ServiceError::Internal(err)),
                // A commit whose spec no longer loads (gone from the repository): nothing is
                // expected of it.
                Err(_) => {}
            }
        }
        let periods: Vec<AppliedPeriod<'_>> = specs
            .iter()
            .enumerate()
            .map(|(i, (from, commit, spec))| AppliedPeriod {
                from: *from,
                to: specs.get(i + 1).map_or(until.timestamp(), |n| n.0),
                commit,
                spec,
            })
            .collect();
        let expected = expected_firings(&periods, since.timestamp(), until.timestamp());
        // Times read in the environment's zone: the spec at the head's, as its other pages.
        let head_zone = match head {
            Some(head) => self
                .specs
                .specs_at(env, &head, None)
                .await
                .ok()
                .map(|(spec, _)| environment_zone(&spec)),
            None => None,
        };
        let zone = head_zone.unwrap_or_else(|| {
            specs
                .last()
                .map_or(domain::spec::TimeZone::UTC, |(_, _, s)| environment_zone(s))
        });
        let mut known: Vec<(&str, Vec<&str>)> = Vec::new();
        for (_, _, spec) in &specs {
            for g in &spec.autoscaling_groups {
                let names = g.schedule.iter().map(|a| a.name.as_str());
                match known.iter_mut().find(|(n, _)| *n == g.name.as_str()) {
                    Some((_, list)) => list.extend(names),
                    None => known.push((g.name.as_str(), names.collect())),
                }
            }
        }
        let activities: Vec<Activity> = activities
            .into_iter()
            .map(|a| {
                Ok(Activity {
                    started_at: time_column("started_at", &a.started_at)?,
                    ended_at: time_column_opt("ended_at", a.ended_at.as_deref())?,
                    id: a.activity_id,
                    group: a.group_name,
                    status: a.status,
                    description: a.description,
                    cause: a.cause,
                })
            })
            .collect::<sqlx::Result<_>>()?;
        let scheduled = firings(expected, &activities, &known, zone);
        Ok(ScalingHistory {
            environment: env.to_owned(),
            since_unix: since.timestamp(),
            until_unix: until.timestamp(),
            time_zone: zone.name().to_owned(),
            groups,
            activities,
            applies: applies
                .into_iter()
                .map(|(change_id, run_id, started, _, status)| ApplyMark {
                    change_id,
                    run_id,
                    at_unix: unix(&started),
                    status,
                })
                .collect(),
            scheduled,
            rollouts: rollout_events
                .into_iter()
                .filter_map(|(at, action, target, detail)| {
                    rollout_mark(&at, &action, target, &detail)
                })
                .collect(),
        })
    }
}

/// A rollout's audit event as a mark on its group's chart.
fn rollout_mark(
    at: &str,
    action: &str,
    target: Option<String>,
    detail: &str,
) -> Option<domain::scaling::RolloutMark> {
    let d: serde_json::Value = serde_json::from_str(detail).ok()?;
    let stage = d["stage"].as_u64().unwrap_or(1);
    let stages = d["stages"].as_u64().unwrap_or(1);
    let what = match action {
        "rollout.stage_started" => format!(
            "refresh started (stage {stage} of {stages}, to {} %)",
            d["checkpoint"].as_u64().unwrap_or(100)
        ),
        "rollout.checkpoint" => format!(
            "checkpoint {} % reached: baking",
            d["checkpoint"].as_u64().unwrap_or(100)
        ),
        _ => format!(
            "rollout {}",
            d["phase"].as_str().unwrap_or("ended").replace('_', " ")
        ),
    };
    Some(domain::scaling::RolloutMark {
        group: d["group"].as_str()?.to_owned(),
        change_id: target?.parse().ok()?,
        at_unix: unix(at),
        what,
    })
}
