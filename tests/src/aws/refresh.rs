//! The instance refresh API, which the emulator lacks: `StartInstanceRefresh`,
//! `DescribeInstanceRefreshes`, `CancelInstanceRefresh` and `RollbackInstanceRefresh` answered
//! in the API reference's shapes and error codes (`InstanceRefreshInProgress`,
//! `ActiveInstanceRefreshNotFound`, `ValidationError`), moving through AWS's states over a few
//! seconds (`Pending`, `InProgress`, `Successful`, `Cancelling`, `Cancelled`,
//! `RollbackInProgress`, `RollbackSuccessful`), stopping at a checkpoint for its delay, and
//! replacing instances in the emulator for real: one instance a step, terminated through the
//! emulator's own `TerminateInstanceInAutoScalingGroup` while the group names the refresh's
//! version, so the instance the emulator launches in its place runs that version's image. The
//! emulator reports every instance on one version; the double reports each on the version it
//! was launched from, as Auto Scaling does. A successful refresh leaves the group on its
//! desired configuration.
//!
//! What it does not model: warm-up and health checks (an instance is in service at once, one
//! step later the next is replaced), `MinHealthyPercentage`/`MaxHealthyPercentage` (one
//! instance at a time), `BakeTime` and the `Baking` state, alarms (`AlarmSpecification` is
//! taken and ignored), `AutoRollback` on a failure (no refresh fails), scale-in protection,
//! standby and warm pools, mixed instances policies, and the rate limits of the real API.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{aws_error, query, rfc3339_ago, tag_values, xml_text, Shared};

/// One refresh the double runs.
#[derive(Debug, Clone)]
pub(super) struct Refresh {
    id: String,
    group: String,
    status: String,
    reason: Option<String>,
    started: String,
    ended: Option<String>,
    template: String,
    /// The version the desired configuration names, and the one the group named before.
    to: String,
    from: String,
    checkpoint: Option<u32>,
    delay: Duration,
    /// When the checkpoint was reached (its delay runs from then).
    reached: Option<Instant>,
    skip_matching: bool,
    /// Its preferences as the request gave them, echoed in the describe.
    preferences: Vec<(String, String)>,
    /// Instances it replaced: the old one's id and version, and the new one's id.
    replaced: Vec<(String, String, String)>,
    /// Instances the group had at the start (the percentage's whole).
    total: u32,
    percentage: u32,
    to_update: u32,
    next: Instant,
}

impl Refresh {
    fn active(&self) -> bool {
        matches!(
            self.status.as_str(),
            "Pending" | "InProgress" | "Baking" | "Cancelling" | "RollbackInProgress"
        )
    }

    fn end(&mut self, status: &str) {
        self.status = status.to_owned();
        self.ended = Some(rfc3339_ago(0));
        self.reason = None;
    }
}

/// The double's state, in the proxy's.
#[derive(Debug, Default)]
pub(super) struct Refreshes {
    pub(super) all: Vec<Refresh>,
    /// Each instance the double knows and the version it was launched from.
    pub(super) versions: BTreeMap<String, String>,
    /// How long one step takes (`None`: a second).
    pub(super) step: Option<Duration>,
    made: u32,
}

const XMLNS: &str = "http://autoscaling.amazonaws.com/doc/2011-01-01/";

fn answer(action: &str, result: &str) -> Response {
    let xml = format!(
        "<{action}Response xmlns=\"{XMLNS}\"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>refresh-double</RequestId></ResponseMetadata></{action}Response>"
    );
    (StatusCode::OK, [("content-type", "text/xml")], xml).into_response()
}

fn param<'p>(params: &'p [(String, String)], key: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A group as the emulator describes it: its template's name and version, and its instances
/// with the version each shows.
async fn group_of(upstream: &str, group: &str) -> Option<(String, String, Vec<String>)> {
    let xml = query(
        upstream,
        "autoscaling",
        "DescribeAutoScalingGroups",
        &[("AutoScalingGroupNames.member.1", group)],
    )
    .await;
    let head = xml.split("<Instances>").next().unwrap_or_default();
    let after = xml.split("</Instances>").nth(1).unwrap_or(head);
    // The group's own template: outside its instances.
    let own = format!("{head}{after}");
    let name = tag_values(&own, "LaunchTemplateName").into_iter().next()?;
    let version = tag_values(&own, "Version")
        .into_iter()
        .next()
        .unwrap_or_else(|| "$Default".into());
    Some((name, version, tag_values(&xml, "InstanceId")))
}

/// Answers one of the four refresh actions, or `None` for any other.
pub(super) async fn handle(
    s: &Shared,
    action: &str,
    params: &[(String, String)],
) -> Option<Response> {
    let bad = |code: &str, message: String| {
        Some(aws_error(StatusCode::BAD_REQUEST, "Sender", code, &message))
    };
    match action {
        "StartInstanceRefresh" => {
            let group = param(params, "AutoScalingGroupName")
                .unwrap_or_default()
                .to_owned();
            let Some((name, from, instances)) = group_of(&s.upstream, &group).await else {
                return bad(
                    "ValidationError",
                    format!(
                        "AutoScalingGroup name not found - AutoScalingGroup '{group}' not found"
                    ),
                );
            };
            let template = param(
                params,
                "DesiredConfiguration.LaunchTemplate.LaunchTemplateName",
            )
            .unwrap_or(&name)
            .to_owned();
            let to = param(params, "DesiredConfiguration.LaunchTemplate.Version")
                .unwrap_or("$Default")
                .to_owned();
            let checkpoint = param(params, "Preferences.CheckpointPercentages.member.1")
                .and_then(|v| v.parse::<u32>().ok());
            let delay = param(params, "Preferences.CheckpointDelay")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(3600);
            let skip_matching = param(params, "Preferences.SkipMatching") == Some("true");
            let preferences: Vec<(String, String)> = params
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix("Preferences.")?.to_owned(), v.clone())))
                .collect();
            let mut st = s.state.lock().unwrap();
            let r = &mut st.refreshes;
            if r.all.iter().any(|x| x.group == group && x.active()) {
                return bad(
                    "InstanceRefreshInProgress",
                    format!("An Instance Refresh is already in progress and blocks the execution of this Instance Refresh for Auto Scaling group {group}."),
                );
            }
            for i in &instances {
                r.versions.entry(i.clone()).or_insert_with(|| from.clone());
            }
            r.made += 1;
            let id = format!("{:08x}-1e5f-4a7d-9c3b-{:012x}", r.made, r.made);
            let step = r.step.unwrap_or(Duration::from_secs(1));
            r.all.push(Refresh {
                id: id.clone(),
                group,
                status: "Pending".into(),
                reason: None,
                started: rfc3339_ago(0),
                ended: None,
                template,
                to,
                from,
                checkpoint: checkpoint.filter(|c| *c < 100),
                delay: Duration::from_secs(delay),
                reached: None,
                skip_matching,
                preferences,
                replaced: Vec::new(),
                total: instances.len() as u32,
                percentage: 0,
                to_update: instances.len() as u32,
                next: Instant::now() + step,
            });
            Some(answer(
                "StartInstanceRefresh",
                &format!("<InstanceRefreshId>{id}</InstanceRefreshId>"),
            ))
        }
        "DescribeInstanceRefreshes" => {
            let group = param(params, "AutoScalingGroupName").unwrap_or_default();
            let ids: Vec<&str> = params
                .iter()
                .filter(|(k, _)| k.starts_with("InstanceRefreshIds.member."))
                .map(|(_, v)| v.as_str())
                .collect();
            let max = param(params, "MaxRecords")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(50);
            let st = s.state.lock().unwrap();
            let members: String = st
                .refreshes
                .all
                .iter()
                .rev()
                .filter(|r| r.group == group && (ids.is_empty() || ids.contains(&r.id.as_str())))
                .take(max)
                .map(member)
                .collect();
            Some(answer(
                "DescribeInstanceRefreshes",
                &format!("<InstanceRefreshes>{members}</InstanceRefreshes>"),
            ))
        }
        "CancelInstanceRefresh" | "RollbackInstanceRefresh" => {
            let group = param(params, "AutoScalingGroupName").unwrap_or_default();
            let mut st = s.state.lock().unwrap();
            let step = st.refreshes.step.unwrap_or(Duration::from_secs(1));
            let Some(r) = st.refreshes.all.iter_mut().rev().find(|r| {
                r.group == group && matches!(r.status.as_str(), "Pending" | "InProgress")
            }) else {
                return bad(
                    "ActiveInstanceRefreshNotFound",
                    format!("No in progress or pending Instance Refresh found for Auto Scaling group {group}"),
                );
            };
            if action == "RollbackInstanceRefresh" {
                if r.from.parse::<u32>().is_err() {
                    return bad(
                        "ValidationError",
                        format!("A rollback is not supported: Auto Scaling group {group} uses the launch template's {} version.", r.from),
                    );
                }
                r.status = "RollbackInProgress".into();
                r.reason = Some("Rollback started by a user request.".into());
            } else {
                r.status = "Cancelling".into();
                r.reason = Some("Cancelling: the instances being replaced finish first.".into());
            }
            r.next = Instant::now() + step;
            let id = r.id.clone();
            Some(answer(
                action,
                &format!("<InstanceRefreshId>{id}</InstanceRefreshId>"),
            ))
        }
        _ => None,
    }
}

/// A refresh as `DescribeInstanceRefreshes` lists it.
fn member(r: &Refresh) -> String {
    let reason = r
        .reason
        .as_deref()
        .map(|x| format!("<StatusReason>{}</StatusReason>", xml_text(x)))
        .unwrap_or_default();
    let end = r
        .ended
        .as_deref()
        .map(|t| format!("<EndTime>{t}</EndTime>"))
        .unwrap_or_default();
    let mut prefs = String::new();
    let mut checkpoints = String::new();
    for (k, v) in &r.preferences {
        match k.strip_prefix("CheckpointPercentages.member.") {
            Some(_) => checkpoints.push_str(&format!("<member>{v}</member>")),
            None if !k.contains('.') => prefs.push_str(&format!("<{k}>{}</{k}>", xml_text(v))),
            None => {}
        }
    }
    if !checkpoints.is_empty() {
        prefs.push_str(&format!(
            "<CheckpointPercentages>{checkpoints}</CheckpointPercentages>"
        ));
    }
    format!(
        "<member><InstanceRefreshId>{}</InstanceRefreshId><AutoScalingGroupName>{}</AutoScalingGroupName><Status>{}</Status>{reason}<StartTime>{}</StartTime>{end}<PercentageComplete>{}</PercentageComplete><InstancesToUpdate>{}</InstancesToUpdate><Preferences>{prefs}</Preferences><DesiredConfiguration><LaunchTemplate><LaunchTemplateName>{}</LaunchTemplateName><Version>{}</Version></LaunchTemplate></DesiredConfiguration></member>",
        r.id, r.group, r.status, r.started, r.percentage, r.to_update, r.template, r.to
    )
}

/// Points the group at `version` of `template` in the emulator.
async fn name_version(upstream: &str, group: &str, template: &str, version: &str) {
    query(
        upstream,
        "autoscaling",
        "UpdateAutoScalingGroup",
        &[
            ("AutoScalingGroupName", group),
            ("LaunchTemplate.LaunchTemplateName", template),
            ("LaunchTemplate.Version", version),
        ],
    )
    .await;
}

/// Replaces `old` with an instance of `version`, for real: the group names that version while
/// the emulator replaces the terminated instance, then the one it named before (AWS changes a
/// group's configuration only when its refresh succeeds). Returns the new instance's id.
async fn replace(
    upstream: &str,
    group: &str,
    template: &str,
    version: &str,
    restore: &str,
    old: &str,
) -> Option<String> {
    let before = group_of(upstream, group).await?.2;
    name_version(upstream, group, template, version).await;
    query(
        upstream,
        "autoscaling",
        "TerminateInstanceInAutoScalingGroup",
        &[
            ("InstanceId", old),
            ("ShouldDecrementDesiredCapacity", "false"),
        ],
    )
    .await;
    let after = group_of(upstream, group).await?.2;
    name_version(upstream, group, template, restore).await;
    after.into_iter().find(|i| !before.contains(i))
}

/// One step of every refresh that is due: run from the proxy's ticker.
pub(super) async fn tick(s: &Shared) {
    let due: Vec<Refresh> = {
        let st = s.state.lock().unwrap();
        let now = Instant::now();
        st.refreshes
            .all
            .iter()
            .filter(|r| r.active() && r.next <= now)
            .cloned()
            .collect()
    };
    for mut r in due {
        let versions = s.state.lock().unwrap().refreshes.versions.clone();
        let began = r.status.clone();
        step(s, &mut r, &versions).await;
        let mut st = s.state.lock().unwrap();
        let step = st.refreshes.step.unwrap_or(Duration::from_secs(1));
        r.next = Instant::now() + step;
        if let Some(slot) = st.refreshes.all.iter_mut().find(|x| x.id == r.id) {
            // A cancel or rollback asked meanwhile wins over this step's state.
            if slot.status == began {
                *slot = r;
            } else {
                slot.replaced = r.replaced;
                slot.percentage = r.percentage;
                slot.to_update = r.to_update;
            }
        }
    }
}

/// Moves `r` one step.
async fn step(s: &Shared, r: &mut Refresh, versions: &BTreeMap<String, String>) {
    let up = &s.upstream;
    let Some((_, _, instances)) = group_of(up, &r.group).await else {
        r.end("Failed");
        r.reason = Some(format!("Auto Scaling group {} no longer exists.", r.group));
        return;
    };
    let version_of = |i: &String| versions.get(i).cloned().unwrap_or_else(|| r.from.clone());
    let renewed: Vec<&String> = r.replaced.iter().map(|(_, _, new)| new).collect();
    let outdated: Vec<String> = instances
        .iter()
        .filter(|i| {
            if r.skip_matching {
                version_of(i) != r.to
            } else {
                !renewed.contains(i)
            }
        })
        .cloned()
        .collect();
    let total = r.total.max(instances.len() as u32).max(1);
    let done = instances.len() as u32 - outdated.len() as u32;
    r.percentage = done * 100 / total;
    r.to_update = outdated.len() as u32;
    match r.status.as_str() {
        "Pending" => {
            r.status = "InProgress".into();
            r.reason = Some("Waiting for instances to warm up before continuing.".into());
        }
        "Cancelling" => r.end("Cancelled"),
        "InProgress" => {
            if let Some(c) = r.checkpoint {
                if r.percentage >= c && r.percentage < 100 {
                    let reached = *r.reached.get_or_insert_with(Instant::now);
                    if reached.elapsed() < r.delay {
                        r.reason = Some(format!(
                            "Checkpoint {c}% reached: waiting {} seconds before continuing.",
                            r.delay.as_secs()
                        ));
                        return;
                    }
                    r.checkpoint = None;
                }
            }
            let Some(old) = outdated.first() else {
                name_version(up, &r.group, &r.template, &r.to).await;
                r.end("Successful");
                r.percentage = 100;
                return;
            };
            let old_version = version_of(old);
            let restore = r.from.clone();
            if let Some(new) = replace(up, &r.group, &r.template, &r.to, &restore, old).await {
                let mut st = s.state.lock().unwrap();
                st.refreshes.versions.insert(new.clone(), r.to.clone());
                drop(st);
                r.reason = Some(format!(
                    "Waiting for instances to warm up before continuing. For example: {new} is warming up."
                ));
                r.replaced.push((old.clone(), old_version, new));
                r.percentage = (done + 1) * 100 / total;
                r.to_update = r.to_update.saturating_sub(1);
            }
        }
        "RollbackInProgress" => match r.replaced.pop() {
            Some((_, old_version, new)) => {
                let restore = r.from.clone();
                if let Some(back) =
                    replace(up, &r.group, &r.template, &old_version, &restore, &new).await
                {
                    s.state
                        .lock()
                        .unwrap()
                        .refreshes
                        .versions
                        .insert(back, old_version);
                }
            }
            None => {
                name_version(up, &r.group, &r.template, &r.from).await;
                r.end("RollbackSuccessful");
            }
        },
        _ => {}
    }
}

/// `xml` (a DescribeAutoScalingGroups answer) with each instance the double knows shown on the
/// version it was launched from.
pub(super) fn rewrite_versions(xml: &str, versions: &BTreeMap<String, String>) -> String {
    if versions.is_empty() {
        return xml.to_owned();
    }
    let mut out = String::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<InstanceId>") {
        let id_end = match rest[start..].find("</InstanceId>") {
            Some(e) => start + e,
            None => break,
        };
        let id = &rest[start + "<InstanceId>".len()..id_end];
        // The instance's own fields run to the next instance (or the list's end).
        let tail = &rest[id_end..];
        let own_len = tail
            .find("<InstanceId>")
            .or_else(|| tail.find("</Instances>"))
            .unwrap_or(tail.len());
        let own = &tail[..own_len];
        out.push_str(&rest[..id_end]);
        match versions.get(id) {
            Some(v) => out.push_str(&super::set_tag(own, "Version", v)),
            None => out.push_str(own),
        }
        rest = &tail[own_len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_known_instance_shows_its_own_version() {
        let xml = "<Instances><member><InstanceId>i-1</InstanceId><LaunchTemplate><LaunchTemplateName>lt</LaunchTemplateName><Version>1</Version></LaunchTemplate></member><member><InstanceId>i-2</InstanceId><LaunchTemplate><Version>1</Version></LaunchTemplate></member></Instances><LaunchTemplate><Version>1</Version></LaunchTemplate>";
        let versions = BTreeMap::from([("i-2".to_owned(), "2".to_owned())]);
        let out = rewrite_versions(xml, &versions);
        assert_eq!(tag_values(&out, "Version"), ["1", "2", "1"]);
    }
}
