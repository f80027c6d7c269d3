//! Talking to the AWS emulator without tierdeck: raw Query-protocol calls to read back what an
//! apply did or to change something behind tierdeck's back, and a fault-injecting proxy.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

mod refresh;

/// Calls `action` of `service` (`autoscaling`, `ec2`, `rds`, `monitoring`) on the emulator at
/// `url` and returns the XML answer; panics unless it succeeds.
pub async fn query(url: &str, service: &str, action: &str, params: &[(&str, &str)]) -> String {
    let version = match service {
        "autoscaling" => "2011-01-01",
        "ec2" => "2016-11-15",
        "rds" => "2014-10-31",
        "monitoring" => "2010-08-01",
        "elasticloadbalancing" => "2015-12-01",
        other => panic!("no API version known for {other}"),
    };
    let mut form = vec![("Action", action), ("Version", version)];
    form.extend_from_slice(params);
    // The emulator routes by the credential scope; it does not check the signature.
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=testing/20260101/ap-northeast-2/{service}/aws4_request, SignedHeaders=host, Signature=0"
    );
    let res = reqwest::Client::new()
        .post(format!("{url}/"))
        .header("Authorization", auth)
        .form(&form)
        .send()
        .await
        .expect("calling the emulator");
    let status = res.status();
    let text = res.text().await.expect("the emulator's answer");
    assert!(status.is_success(), "{service} {action}: {status}: {text}");
    text
}

/// The text of every `<tag>…</tag>` in `xml`, in order.
pub fn tag_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(after[..end].to_owned());
        rest = &after[end + close.len()..];
    }
    out
}

/// The first `<tag>` value, or a panic naming it.
pub fn tag_value(xml: &str, tag: &str) -> String {
    tag_values(xml, tag)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
}

/// What the proxy does to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 400 `Throttling`, as AWS answers when its rate limit is hit.
    Throttle,
    /// 500 `InternalFailure`.
    ServerError,
    /// Never answers.
    Hang,
    /// 403 `AccessDenied`, as AWS answers a call the credentials' policy does not allow.
    AccessDenied,
    /// Passes the call on, then answers 500 `InternalFailure`: AWS did it, the answer was
    /// lost on the way back.
    AnswerLost,
}

#[derive(Debug, Clone)]
struct Rule {
    action: String,
    fault: Fault,
    /// How many more calls it hits; `None`: every call.
    remaining: Option<u32>,
    /// Only calls with a parameter of this value (a resource's name); `None`: every call.
    naming: Option<String>,
}

/// A database the proxy shows as RDS shows one it is still modifying.
#[derive(Debug, Clone)]
struct Modifying {
    id: String,
    until: std::time::Instant,
    /// (XML tag, value before the modification, value it moves to).
    values: Vec<(String, String, String)>,
}

#[derive(Default)]
struct ProxyState {
    rules: Vec<Rule>,
    /// Calls seen per action.
    calls: BTreeMap<String, u32>,
    /// Calls a rule with `naming` hit, per value named.
    named_hits: BTreeMap<String, u32>,
    /// Calls seen per `service:Action`, until [`FaultProxy::take_calls`].
    by_service: BTreeMap<String, u32>,
    /// How long a `ModifyDBInstance` keeps its database `modifying` (`None`: moto's at once).
    modify_for: Option<std::time::Duration>,
    modifying: Vec<Modifying>,
    /// How long a new instance stays `Pending` before it is `InService` (`None`: moto's at
    /// once).
    launch_for: Option<std::time::Duration>,
    /// Instances seen: when first seen, or `None` for those there before `launch_for` was set.
    instances: BTreeMap<String, Option<std::time::Instant>>,
    /// What `DescribeScalingActivities` answers (`None`: moto's, which is always empty).
    activities: Option<Vec<ScalingActivity>>,
    /// Each `DescribeScalingActivities` call's `AutoScalingGroupName` and `NextToken`.
    activity_reads: Vec<(Option<String>, Option<String>)>,
    /// The access key ids AWS knows (`None`: any, as moto takes any).
    known_keys: Option<Vec<String>>,
    /// The most items a page of a listing describe holds (`None`: moto's, which answers
    /// `DescribePolicies`, `DescribeScheduledActions` and `DescribeAlarms` in one page).
    page: Option<usize>,
    /// Every call, with the key that signed it.
    signed: Vec<SignedCall>,
    /// Every role STS let assume, with the key it gave.
    assumed: Vec<Assumed>,
    /// How long the sessions STS gives last (`None`: moto's hour).
    sts_lasts: Option<std::time::Duration>,
    /// CloudWatch datapoints put as distributions (`Values` and `Counts`).
    distributions: Vec<Distribution>,
    /// The instance refreshes the proxy runs (the emulator has none): [`refresh`].
    refreshes: refresh::Refreshes,
}

/// A call as the proxy saw it: the access key that signed it, the service and action, and its
/// Query-protocol parameters.
#[derive(Debug, Clone)]
pub struct SignedCall {
    pub key: String,
    pub service: String,
    pub action: String,
    pub params: Vec<(String, String)>,
}

impl SignedCall {
    /// Whether any parameter's value contains `text` (a resource's name).
    pub fn names(&self, text: &str) -> bool {
        self.params.iter().any(|(_, v)| v.contains(text))
    }
}

/// A role STS let assume: its ARN, the session's name and the key it gave.
#[derive(Debug, Clone)]
pub struct Assumed {
    pub role: String,
    pub session: String,
    pub key: String,
}

/// The listing describes that AWS answers in pages and moto does not: (action, the list's
/// tag, the result's tag).
const PAGED: [(&str, &str, &str); 3] = [
    (
        "DescribePolicies",
        "ScalingPolicies",
        "DescribePoliciesResult",
    ),
    (
        "DescribeScheduledActions",
        "ScheduledUpdateGroupActions",
        "DescribeScheduledActionsResult",
    ),
    ("DescribeAlarms", "MetricAlarms", "DescribeAlarmsResult"),
];

/// A scaling activity as Auto Scaling reports it (the API reference's `Activity`), for
/// [`FaultProxy::scaling_activities`].
#[derive(Debug, Clone)]
pub struct ScalingActivity {
    pub id: String,
    pub group: String,
    /// `StatusCode`: `InProgress`, `Successful`, `Failed`, `Cancelled`, …
    pub status: String,
    pub description: String,
    /// RFC 3339, UTC, as AWS writes times.
    pub started_at: String,
    pub ended_at: Option<String>,
    /// Why it ran, in Auto Scaling's words.
    pub cause: String,
}

/// The time `secs` seconds ago in RFC 3339, UTC, to the second (as AWS writes times).
/// The time `d` from now, RFC 3339 in UTC, as AWS writes times.
pub fn rfc3339_in(d: std::time::Duration) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        + d;
    rfc3339_at(now.as_secs())
}

pub fn rfc3339_ago(secs: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    rfc3339_at(now.saturating_sub(secs))
}

/// Unix seconds in RFC 3339, UTC, to the second (as AWS writes times).
pub fn rfc3339_at(t: u64) -> String {
    let (days, rest) = ((t / 86_400) as i64, t % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

impl ScalingActivity {
    /// An activity of `group` that started `secs_ago`; one that is over ended a minute later.
    pub fn started_ago(id: &str, group: &str, status: &str, secs_ago: u64) -> Self {
        let started_at = rfc3339_ago(secs_ago);
        let mut a = ScalingActivity {
            id: id.into(),
            group: group.into(),
            status: status.into(),
            description: format!("Launching a new EC2 instance ({id})"),
            cause: format!("At {started_at} a user request changed the capacity."),
            started_at,
            ended_at: None,
        };
        if a.finished() {
            a.ended_at = Some(rfc3339_ago(secs_ago.saturating_sub(60)));
        }
        a
    }

    /// The activity of a scheduled action `action` of `group` that fired at `at` (Unix
    /// seconds) and moved the desired capacity `from` → `to`, as Auto Scaling records one: it
    /// starts a few seconds after the action, its cause names the action, and it took a
    /// minute and a half.
    pub fn scheduled(id: &str, group: &str, action: &str, at: u64, from: u32, to: u32) -> Self {
        ScalingActivity::caused(
            id,
            group,
            at,
            from,
            to,
            &format!(
                "At {} the scheduled action {action} executed. Setting desired capacity from {from} to {to}.",
                rfc3339_at(at)
            ),
        )
    }

    /// The activity of a CPU alarm `alarm` that triggered `policy` of `group` at `at` and
    /// moved the desired capacity `from` → `to`.
    pub fn alarmed(
        id: &str,
        group: &str,
        (alarm, policy): (&str, &str),
        at: u64,
        from: u32,
        to: u32,
    ) -> Self {
        ScalingActivity::caused(
            id,
            group,
            at,
            from,
            to,
            &format!(
                "At {} a monitor alarm {alarm} in state ALARM triggered policy {policy} changing the desired capacity from {from} to {to}.",
                rfc3339_at(at)
            ),
        )
    }

    fn caused(id: &str, group: &str, at: u64, from: u32, to: u32, cause: &str) -> Self {
        let started = at + 12;
        let (verb, n) = if to >= from {
            ("increasing", to - from)
        } else {
            ("shrinking", from - to)
        };
        let description = if to >= from {
            format!(
                "Launching {n} new EC2 instance{}",
                if n == 1 { "" } else { "s" }
            )
        } else {
            format!(
                "Terminating {n} EC2 instance{}",
                if n == 1 { "" } else { "s" }
            )
        };
        ScalingActivity {
            id: id.into(),
            group: group.into(),
            status: "Successful".into(),
            description,
            cause: format!(
                "{cause}  At {} an instance was {} in response to a difference between desired and actual capacity, {verb} the capacity from {from} to {to}.",
                rfc3339_at(started),
                if to >= from { "started" } else { "taken out of service" }
            ),
            started_at: rfc3339_at(started),
            ended_at: Some(rfc3339_at(started + 90)),
        }
    }

    fn finished(&self) -> bool {
        matches!(self.status.as_str(), "Successful" | "Failed" | "Cancelled")
    }
}

/// A `DescribeScalingActivities` answer of `activities` as Auto Scaling gives it: the group's
/// when the call names one, else the account's; those in progress first, then the rest
/// newest first; in pages ([`paged`], `MaxRecords` 100 unless told).
fn activities_answer(
    activities: &[ScalingActivity],
    params: &[(String, String)],
    page: usize,
) -> Result<String, (&'static str, String)> {
    let group = params
        .iter()
        .find(|(k, _)| k == "AutoScalingGroupName")
        .map(|(_, v)| v.as_str());
    let mut listed: Vec<&ScalingActivity> = activities
        .iter()
        .filter(|a| group.is_none_or(|g| g == a.group))
        .collect();
    listed.sort_by(|a, b| {
        a.finished()
            .cmp(&b.finished())
            .then_with(|| b.started_at.cmp(&a.started_at))
    });
    let members: String = listed
        .iter()
        .map(|a| {
            let end = a
                .ended_at
                .as_deref()
                .map(|t| format!("<EndTime>{t}</EndTime>"))
                .unwrap_or_default();
            let progress = if a.finished() { 100 } else { 50 };
            format!(
                "<member><ActivityId>{}</ActivityId><AutoScalingGroupName>{}</AutoScalingGroupName><Description>{}</Description><Cause>{}</Cause><StartTime>{}</StartTime>{end}<StatusCode>{}</StatusCode><Progress>{progress}</Progress><Details>{{}}</Details></member>",
                a.id, a.group, xml_text(&a.description), xml_text(&a.cause), a.started_at, a.status
            )
        })
        .collect();
    let xml = format!(
        "<DescribeScalingActivitiesResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><DescribeScalingActivitiesResult><Activities>{members}</Activities></DescribeScalingActivitiesResult><ResponseMetadata><RequestId>fault-proxy</RequestId></ResponseMetadata></DescribeScalingActivitiesResponse>"
    );
    paged(
        &xml,
        "Activities",
        "DescribeScalingActivitiesResult",
        params,
        page,
        100,
    )
}

/// `text` as XML character data.
fn xml_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The `<member>` elements directly inside `<list>` of `xml`, and the text before and after
/// them; `None` when `xml` has no such list.
fn members<'x>(xml: &'x str, list: &str) -> Option<(&'x str, Vec<&'x str>, &'x str)> {
    let (open, close) = (format!("<{list}>"), format!("</{list}>"));
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    let inner = &xml[start..end];
    let mut items = Vec::new();
    let (mut depth, mut at, mut from) = (0usize, 0usize, 0usize);
    while at < inner.len() {
        let rest = &inner[at..];
        if rest.starts_with("<member>") {
            if depth == 0 {
                from = at;
            }
            depth += 1;
            at += "<member>".len();
        } else if rest.starts_with("</member>") {
            depth = depth.saturating_sub(1);
            at += "</member>".len();
            if depth == 0 {
                items.push(&inner[from..at]);
            }
        } else {
            at += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    Some((&xml[..start], items, &xml[end..]))
}

/// One page of a listing describe's answer, as AWS pages it: at most `MaxRecords` items
/// (default `default`: 50 for most, 100 for scaling activities; at most 100) and no more than `page`, from the offset its `NextToken` carries,
/// with a `NextToken` while more remain. `Err` with AWS's error for a bad parameter.
fn paged(
    xml: &str,
    list: &str,
    result: &str,
    params: &[(String, String)],
    page: usize,
    default: usize,
) -> Result<String, (&'static str, String)> {
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let max = match param("MaxRecords") {
        None => default,
        Some(v) => match v.parse::<usize>() {
            Ok(n @ 1..=100) => n,
            _ => {
                return Err((
                    "ValidationError",
                    format!("1 validation error detected: Value '{v}' at 'maxRecords' failed to satisfy constraint: Member must have value less than or equal to 100"),
                ))
            }
        },
    };
    let offset = match param("NextToken") {
        None => 0,
        Some(t) => t
            .strip_prefix("proxy-page-")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or(("InvalidNextToken", format!("The token '{t}' is invalid.")))?,
    };
    let Some((head, items, tail)) = members(xml, list) else {
        return Ok(xml.to_owned());
    };
    let take = max.min(page);
    let shown: String = items.iter().skip(offset).take(take).copied().collect();
    let mut out = format!("{head}{shown}{tail}");
    if offset + take < items.len() {
        let close = format!("</{result}>");
        if let Some(at) = out.find(&close) {
            out.insert_str(
                at,
                &format!("<NextToken>proxy-page-{}</NextToken>", offset + take),
            );
        }
    }
    Ok(out)
}

/// Whether a `DescribeNetworkAcls` answer holds an entry of rule number `rule` in the
/// direction `egress` (`true` or `false`, as the Query protocol writes it).
fn acl_entry_exists(xml: &str, rule: &str, egress: &str) -> bool {
    let Some(entries) = xml
        .split_once("<entrySet>")
        .and_then(|(_, rest)| rest.split_once("</entrySet>"))
        .map(|(inner, _)| inner)
    else {
        return false;
    };
    entries.split("</item>").any(|item| {
        tag_values(item, "ruleNumber").first().map(String::as_str) == Some(rule)
            && tag_values(item, "egress").first().map(String::as_str) == Some(egress)
    })
}

/// The settings `ModifyDBInstance` may carry, by their Query parameter and response tag.
const DB_SETTINGS: [&str; 4] = [
    "DBInstanceClass",
    "MultiAZ",
    "AllocatedStorage",
    "BackupRetentionPeriod",
];

/// `xml` with the first `<tag>…</tag>` holding `value`.
fn set_tag(xml: &str, tag: &str, value: &str) -> String {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let Some(start) = xml.find(&open) else {
        return xml.to_owned();
    };
    let Some(end) = xml[start..].find(&close) else {
        return xml.to_owned();
    };
    format!(
        "{}{open}{value}{close}{}",
        &xml[..start],
        &xml[start + end + close.len()..]
    )
}

/// One `<DBInstance>` as RDS describes it while modifying: status `modifying`, the old values,
/// and the new ones under `PendingModifiedValues` (the API reference's shapes).
fn modifying_view(instance: &str, m: &Modifying) -> String {
    let mut x = instance.to_owned();
    // moto's own (empty) PendingModifiedValues goes; RDS's takes its place.
    for empty in [
        "<PendingModifiedValues/>",
        "<PendingModifiedValues></PendingModifiedValues>",
    ] {
        x = x.replace(empty, "");
    }
    if let (Some(a), Some(b)) = (
        x.find("<PendingModifiedValues>"),
        x.find("</PendingModifiedValues>"),
    ) {
        if a < b {
            x = format!("{}{}", &x[..a], &x[b + "</PendingModifiedValues>".len()..]);
        }
    }
    x = set_tag(&x, "DBInstanceStatus", "modifying");
    let mut pending = String::from("<PendingModifiedValues>");
    for (tag, old, new) in &m.values {
        x = set_tag(&x, tag, old);
        pending.push_str(&format!("<{tag}>{new}</{tag}>"));
    }
    pending.push_str("</PendingModifiedValues>");
    match x.find("</DBInstanceStatus>") {
        Some(i) => {
            let at = i + "</DBInstanceStatus>".len();
            format!("{}{pending}{}", &x[..at], &x[at..])
        }
        None => x,
    }
}

/// `xml` (a DescribeAutoScalingGroups answer) with the instances launched less than
/// `launch_for` ago shown `Pending`, as Auto Scaling shows them until they are in service.
/// Each instance's `LifecycleState` follows its `InstanceId` (the API's member order).
fn rewrite_launching(
    xml: &str,
    launch_for: std::time::Duration,
    instances: &mut BTreeMap<String, Option<std::time::Instant>>,
) -> String {
    let now = std::time::Instant::now();
    let (open, close) = ("<InstanceId>", "</InstanceId>");
    let mut out = String::new();
    let mut rest = xml;
    while let Some(start) = rest.find(open) {
        let Some(len) = rest[start..].find(close) else {
            break;
        };
        let id = rest[start + open.len()..start + len].to_owned();
        let end = start + len + close.len();
        out.push_str(&rest[..end]);
        rest = &rest[end..];
        let seen = *instances.entry(id).or_insert(Some(now));
        let launching = seen.is_some_and(|t| now < t + launch_for);
        // This instance's state: before the next instance.
        let next = rest.find(open).unwrap_or(rest.len());
        if launching {
            let own = &rest[..next];
            let swapped = set_tag(own, "LifecycleState", "Pending");
            out.push_str(&swapped);
            rest = &rest[next..];
        }
    }
    out.push_str(rest);
    out
}

/// `xml` (a DescribeDBInstances or ModifyDBInstance answer) with the databases still modifying
/// shown as RDS shows them.
fn rewrite_modifying(xml: &str, modifying: &[Modifying]) -> String {
    let mut out = String::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<DBInstance>") {
        let Some(len) = rest[start..].find("</DBInstance>") else {
            break;
        };
        let end = start + len + "</DBInstance>".len();
        let instance = &rest[start..end];
        out.push_str(&rest[..start]);
        let id = tag_values(instance, "DBInstanceIdentifier")
            .into_iter()
            .next()
            .unwrap_or_default();
        match modifying.iter().find(|m| m.id == id) {
            Some(m) => out.push_str(&modifying_view(instance, m)),
            None => out.push_str(instance),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[derive(Clone)]
struct Shared {
    upstream: String,
    state: Arc<Mutex<ProxyState>>,
    http: reqwest::Client,
}

/// A proxy in front of the emulator, on a free loopback port, that fails chosen calls (by
/// their Query-protocol `Action`) and passes everything else on.
pub struct FaultProxy {
    pub url: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
    /// Moves the instance refreshes along.
    ticker: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(upstream: &str) -> FaultProxy {
        FaultProxy::start_on(upstream, "127.0.0.1:0")
            .await
            .expect("a free loopback port")
    }

    /// The proxy on `listen` (a loopback address and port), for the demo.
    pub async fn start_on(upstream: &str, listen: &str) -> std::io::Result<FaultProxy> {
        let shared = Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            state: Arc::default(),
            // Loopback only: no proxy from the environment sits between it and the emulator.
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        };
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        let ticking = shared.clone();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                refresh::tick(&ticking).await;
            }
        });
        Ok(FaultProxy {
            url,
            shared,
            task,
            ticker,
        })
    }

    /// Fails the next `times` calls of `action` (every call when `None`).
    pub fn fail(&self, action: &str, fault: Fault, times: Option<u32>) {
        self.shared.state.lock().unwrap().rules.push(Rule {
            action: action.to_owned(),
            fault,
            remaining: times,
            naming: None,
        });
    }

    /// Fails every call of `action` that names `value` in one of its parameters (a group's or
    /// a database's name), and no other.
    pub fn fail_naming(&self, action: &str, value: &str, fault: Fault) {
        self.shared.state.lock().unwrap().rules.push(Rule {
            action: action.to_owned(),
            fault,
            remaining: None,
            naming: Some(value.to_owned()),
        });
    }

    /// From now on a `ModifyDBInstance` leaves its database `modifying` for `d`, as RDS does:
    /// `DescribeDBInstances` shows the old settings with the new ones under
    /// `PendingModifiedValues` until then, and another `ModifyDBInstance` of it meanwhile is
    /// refused with `InvalidDBInstanceState`. Then moto's state (already changed) shows through.
    pub fn rds_modifies_for(&self, d: std::time::Duration) {
        self.shared.state.lock().unwrap().modify_for = Some(d);
    }

    /// From now on an instance a group launches stays `Pending` in `DescribeAutoScalingGroups`
    /// for `d` after the proxy first sees it, as Auto Scaling's instances do while they boot and
    /// pass their health checks; the instances there now stay `InService`.
    pub async fn asg_launches_take(&self, d: std::time::Duration) {
        let groups = query(
            &self.shared.upstream,
            "autoscaling",
            "DescribeAutoScalingGroups",
            &[],
        )
        .await;
        let mut state = self.shared.state.lock().unwrap();
        for id in tag_values(&groups, "InstanceId") {
            state.instances.insert(id, None);
        }
        state.launch_for = Some(d);
    }

    /// From now on `DescribePolicies`, `DescribeScheduledActions` and `DescribeAlarms` answer
    /// in pages of at most `items` (and `MaxRecords`), each but the last with a `NextToken`, as
    /// AWS answers long listings (moto answers them whole), and `DescribeAutoScalingGroups`
    /// refuses more names than its `MaxRecords`. AWS may return fewer items than
    /// `MaxRecords` asks for; a reader must follow `NextToken` to the end.
    pub fn pages_of(&self, items: usize) {
        self.shared.state.lock().unwrap().page = Some(items.max(1));
    }

    /// From now on `DescribeScalingActivities` answers with `activities`, as Auto Scaling
    /// would (moto answers none): see [`activities_answer`]; in pages of [`Self::pages_of`]'s
    /// size too when set.
    pub fn scaling_activities(&self, activities: Vec<ScalingActivity>) {
        self.shared.state.lock().unwrap().activities = Some(activities);
    }

    /// Each `DescribeScalingActivities` call so far: the group it named (`None`: the
    /// account's) and the `NextToken` it carried.
    pub fn activity_reads(&self) -> Vec<(Option<String>, Option<String>)> {
        self.shared.state.lock().unwrap().activity_reads.clone()
    }

    /// From now on only requests signed with one of `keys` are answered; any other key gets
    /// what AWS answers for an unknown access key id: each service in its own protocol.
    pub fn known_keys(&self, keys: &[&str]) {
        self.shared.state.lock().unwrap().known_keys =
            Some(keys.iter().map(|k| (*k).to_owned()).collect());
    }

    /// Every call so far, with the key that signed it.
    pub fn signed(&self) -> Vec<SignedCall> {
        self.shared.state.lock().unwrap().signed.clone()
    }

    /// Every role assumed so far through the proxy, with the key STS gave.
    pub fn assumed(&self) -> Vec<Assumed> {
        self.shared.state.lock().unwrap().assumed.clone()
    }

    /// From now on the sessions STS gives (`AssumeRole`) expire after `d`, not moto's hour: the
    /// SDK must renew them as it would a real role's (role-chained sessions last an hour at
    /// most).
    pub fn sts_sessions_last(&self, d: std::time::Duration) {
        self.shared.state.lock().unwrap().sts_lasts = Some(d);
    }

    /// Lets every call through again.
    pub fn heal(&self) {
        self.shared.state.lock().unwrap().rules.clear();
    }

    /// Calls a [`Self::fail_naming`] rule for `value` hit so far.
    pub fn hits_naming(&self, value: &str) -> u32 {
        let state = self.shared.state.lock().unwrap();
        state.named_hits.get(value).copied().unwrap_or(0)
    }

    /// Calls of `action` seen so far, failed or not.
    pub fn calls(&self, action: &str) -> u32 {
        let state = self.shared.state.lock().unwrap();
        state.calls.get(action).copied().unwrap_or(0)
    }

    /// The calls seen since the last `take_calls`, by `service:Action` (the service as the
    /// request's signature names it), whatever protocol each came in.
    pub fn take_calls(&self) -> BTreeMap<String, u32> {
        std::mem::take(&mut self.shared.state.lock().unwrap().by_service)
    }
}

impl FaultProxy {
    /// From now on each step of an instance refresh (a state change, one instance replaced)
    /// takes `d` (a second unless told).
    pub fn refresh_steps_take(&self, d: std::time::Duration) {
        self.shared.state.lock().unwrap().refreshes.step = Some(d);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.ticker.abort();
    }
}

/// The call's service, from its signature's credential scope (`…/date/region/service/…`), and
/// its action: the Query protocol's `Action`, the JSON protocol's `X-Amz-Target` or the
/// RPC v2 CBOR path's `/operation/NAME`.
fn call_of(headers: &HeaderMap, uri: &Uri, body: &[u8]) -> (String, String) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let service = header("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("?")
        .to_owned();
    let action = url_decode_pairs(body)
        .into_iter()
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v)
        .or_else(|| {
            header("x-amz-target")
                .and_then(|t| t.rsplit('.').next())
                .map(str::to_owned)
        })
        .or_else(|| {
            uri.path()
                .split_once("/operation/")
                .map(|(_, op)| op.trim_end_matches('/').to_owned())
        })
        .unwrap_or_default();
    (service, action)
}

fn url_decode_pairs(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let decode = |s: &str| {
                urlencoding::decode(&s.replace('+', " "))
                    .map(|c| c.into_owned())
                    .unwrap_or_default()
            };
            Some((decode(k), decode(v)))
        })
        .collect()
}

/// The access key id a request is signed with (`Credential=KEY/date/region/service/…`).
fn access_key_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .map(str::to_owned)
}

/// What AWS answers a request signed with a key it does not know, per service: EC2's 401
/// `AuthFailure` in its own `<Response><Errors>` shape, the JSON protocol's
/// `UnrecognizedClientException`, and the other Query services' 403 `InvalidClientTokenId`.
fn unknown_key(service: &str) -> Response {
    const INVALID: &str = "The security token included in the request is invalid.";
    match service {
        "ec2" => (
            StatusCode::UNAUTHORIZED,
            [("content-type", "text/xml")],
            "<Response><Errors><Error><Code>AuthFailure</Code><Message>AWS was not able to validate the provided access credentials</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>",
        )
            .into_response(),
        "pricing" => (
            StatusCode::BAD_REQUEST,
            [("content-type", "application/x-amz-json-1.1")],
            format!("{{\"__type\":\"UnrecognizedClientException\",\"message\":\"{INVALID}\"}}"),
        )
            .into_response(),
        _ => aws_error(StatusCode::FORBIDDEN, "Sender", "InvalidClientTokenId", INVALID),
    }
}

/// An error answer in the shape of `service`'s protocol: EC2's own (`<Response><Errors>`), or
/// the Query protocol's `<ErrorResponse>` of the others.
fn service_error(
    service: &str,
    status: StatusCode,
    kind: &str,
    code: &str,
    message: &str,
) -> Response {
    if service == "ec2" {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>"
        );
        return (status, [("content-type", "text/xml")], body).into_response();
    }
    aws_error(status, kind, code, message)
}

fn aws_error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response {
    let body = format!(
        "<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>"
    );
    (status, [("content-type", "text/xml")], body).into_response()
}

async fn forward(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (service, action) = call_of(&headers, &uri, &body);
    let key = access_key_of(&headers).unwrap_or_default();
    let call_params = url_decode_pairs(&body);
    let known = s.state.lock().unwrap().known_keys.clone();
    if let Some(known) = known {
        if !known.contains(&key) {
            return unknown_key(&service);
        }
    }
    let params = url_decode_pairs(&body);
    let fault = {
        let mut state = s.state.lock().unwrap();
        state.signed.push(SignedCall {
            key,
            service: service.clone(),
            action: action.clone(),
            params: call_params.clone(),
        });
        *state.calls.entry(action.clone()).or_default() += 1;
        *state
            .by_service
            .entry(format!("{service}:{action}"))
            .or_default() += 1;
        let rule = state.rules.iter_mut().find(|r| {
            r.action == action
                && r.remaining.is_none_or(|n| n > 0)
                && r.naming
                    .as_ref()
                    .is_none_or(|v| params.iter().any(|(_, p)| p == v))
        });
        let hit = rule.map(|r| {
            if let Some(n) = &mut r.remaining {
                *n -= 1;
            }
            (r.fault, r.naming.clone())
        });
        if let Some((_, Some(value))) = &hit {
            *state.named_hits.entry(value.clone()).or_default() += 1;
        }
        hit.map(|(fault, _)| fault)
    };
    match fault {
        Some(Fault::Throttle) => {
            return service_error(
                &service,
                StatusCode::BAD_REQUEST,
                "Sender",
                "Throttling",
                "Rate exceeded",
            )
        }
        Some(Fault::ServerError) => {
            return service_error(
                &service,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Receiver",
                "InternalFailure",
                "An internal error occurred",
            )
        }
        Some(Fault::Hang) => std::future::pending::<()>().await,
        Some(Fault::AccessDenied) => {
            return service_error(
                &service,
                StatusCode::FORBIDDEN,
                "Sender",
                "AccessDenied",
                &format!("User: arn:aws:iam::123456789012:user/tierdeck is not authorized to perform: {service}:{action}"),
            )
        }
        Some(Fault::AnswerLost) | None => {}
    }
    let lose_answer = fault == Some(Fault::AnswerLost);
    // The instance refresh API, which the emulator lacks.
    if let Some(answer) = refresh::handle(&s, &action, &call_params).await {
        return answer;
    }
    // CloudWatch's distributions and percentiles, which moto lacks.
    let body = match action.as_str() {
        "PutMetricData" => keep_distributions(&s.state, &body),
        "GetMetricData" if !lose_answer => {
            if let Some(answer) = metric_data_with_percentiles(&s, &uri, &headers, &body).await {
                return answer;
            }
            body
        }
        _ => body,
    };
    // EC2 refuses to delete or replace a network ACL entry that is not there (moto fails with
    // a 500 instead).
    if matches!(
        action.as_str(),
        "DeleteNetworkAclEntry" | "ReplaceNetworkAclEntry"
    ) {
        let params = url_decode_pairs(&body);
        let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let (acl, rule, egress) = (
            param("NetworkAclId").unwrap_or_default(),
            param("RuleNumber").unwrap_or_default(),
            param("Egress").unwrap_or_else(|| "false".into()),
        );
        let acls = query(
            &s.upstream,
            "ec2",
            "DescribeNetworkAcls",
            &[("NetworkAclId.1", &acl)],
        )
        .await;
        if !acl_entry_exists(&acls, &rule, &egress) {
            return service_error(
                &service,
                StatusCode::BAD_REQUEST,
                "Sender",
                "InvalidNetworkAclEntry.NotFound",
                &format!(
                    "The network ACL entry identified by {rule} (egress {egress}) does not exist in {acl}."
                ),
            );
        }
    }
    // Scaling activities, when given: moto has none.
    if action == "DescribeScalingActivities" {
        let params = url_decode_pairs(&body);
        let mut state = s.state.lock().unwrap();
        if let Some(activities) = state.activities.clone() {
            let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            state
                .activity_reads
                .push((param("AutoScalingGroupName"), param("NextToken")));
            let page = state.page.unwrap_or(usize::MAX);
            drop(state);
            return match activities_answer(&activities, &params, page) {
                Ok(xml) => (StatusCode::OK, [("content-type", "text/xml")], xml).into_response(),
                Err((code, message)) => {
                    aws_error(StatusCode::BAD_REQUEST, "Sender", code, &message)
                }
            };
        }
    }
    // RDS's asynchronous modifications, when asked for.
    let modify_for = {
        let mut state = s.state.lock().unwrap();
        let now = std::time::Instant::now();
        state.modifying.retain(|m| m.until > now);
        state.modify_for
    };
    let mut started: Option<Modifying> = None;
    if let (Some(d), "ModifyDBInstance") = (modify_for, action.as_str()) {
        let params = url_decode_pairs(&body);
        let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let id = param("DBInstanceIdentifier").unwrap_or_default();
        let busy = s.state.lock().unwrap().modifying.iter().any(|m| m.id == id);
        if busy {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "Sender",
                "InvalidDBInstanceState",
                "Database instance is not in available state.",
            );
        }
        let before = query(
            &s.upstream,
            "rds",
            "DescribeDBInstances",
            &[("DBInstanceIdentifier", &id)],
        )
        .await;
        let values = DB_SETTINGS
            .iter()
            .filter_map(|tag| {
                let new = param(tag)?;
                let old = tag_values(&before, tag).into_iter().next()?;
                (old != new).then(|| (tag.to_string(), old, new))
            })
            .collect();
        started = Some(Modifying {
            id,
            until: std::time::Instant::now() + d,
            values,
        });
    }
    let rewrite = matches!(action.as_str(), "DescribeDBInstances" | "ModifyDBInstance");
    let launching = action == "DescribeAutoScalingGroups";
    let paging = PAGED
        .iter()
        .find(|(a, _, _)| *a == action)
        .and_then(|&(_, list, result)| Some((list, result, s.state.lock().unwrap().page?)));
    let params = if paging.is_some() {
        url_decode_pairs(&body)
    } else {
        Vec::new()
    };
    // AWS takes no more group names than `MaxRecords` (50 unless raised, at most 100).
    if launching && s.state.lock().unwrap().page.is_some() {
        let params = url_decode_pairs(&body);
        let names = params
            .iter()
            .filter(|(k, _)| k.starts_with("AutoScalingGroupNames.member."))
            .count();
        let max = params
            .iter()
            .find(|(k, _)| k == "MaxRecords")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(50);
        if names > max.min(100) {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "Sender",
                "ValidationError",
                &format!("{names} group names are more than MaxRecords ({max}) allows"),
            );
        }
    }
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut req = s
        .http
        .request(method, format!("{}{path}", s.upstream))
        .body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            req = req.header(name, value);
        }
    }
    match req.send().await {
        Ok(res) => {
            let status = res.status();
            let headers = res.headers().clone();
            let mut bytes = res.bytes().await.unwrap_or_default();
            if status.is_success() {
                let mut state = s.state.lock().unwrap();
                if let Some(m) = started.take() {
                    state.modifying.push(m);
                }
                if rewrite && !state.modifying.is_empty() {
                    let text =
                        rewrite_modifying(&String::from_utf8_lossy(&bytes), &state.modifying);
                    bytes = Bytes::from(text);
                }
                if let Some((list, result, page)) = paging {
                    match paged(
                        &String::from_utf8_lossy(&bytes),
                        list,
                        result,
                        &params,
                        page,
                        50,
                    ) {
                        Ok(text) => bytes = Bytes::from(text),
                        Err((code, message)) => {
                            return aws_error(StatusCode::BAD_REQUEST, "Sender", code, &message)
                        }
                    }
                }
                if launching {
                    let text = refresh::rewrite_versions(
                        &String::from_utf8_lossy(&bytes),
                        &state.refreshes.versions,
                    );
                    bytes = Bytes::from(text);
                }
                if let (true, Some(d)) = (launching, state.launch_for) {
                    let text = rewrite_launching(
                        &String::from_utf8_lossy(&bytes),
                        d,
                        &mut state.instances,
                    );
                    bytes = Bytes::from(text);
                }
                if action == "AssumeRole" {
                    let mut text = String::from_utf8_lossy(&bytes).into_owned();
                    if let Some(d) = state.sts_lasts {
                        let until = rfc3339_in(d);
                        if let (Some(a), Some(b)) =
                            (text.find("<Expiration>"), text.find("</Expiration>"))
                        {
                            text.replace_range(a + "<Expiration>".len()..b, &until);
                        }
                    }
                    let param = |k: &str| {
                        call_params
                            .iter()
                            .find(|(n, _)| n == k)
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default()
                    };
                    state.assumed.push(Assumed {
                        role: param("RoleArn"),
                        session: param("RoleSessionName"),
                        key: tag_value(&text, "AccessKeyId"),
                    });
                    bytes = Bytes::from(text);
                }
            }
            if action == "DescribeNetworkAcls" && status == StatusCode::BAD_REQUEST {
                bytes = Bytes::from(acl_not_found(&String::from_utf8_lossy(&bytes)));
            }
            if lose_answer {
                return service_error(
                    &service,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Receiver",
                    "InternalFailure",
                    "An internal error occurred",
                );
            }
            let mut out = Response::new(Body::from(bytes));
            *out.status_mut() = status;
            for (name, value) in &headers {
                if name != "content-length" && name != "transfer-encoding" {
                    out.headers_mut().insert(name, value.clone());
                }
            }
            out
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// EC2's answer to `DescribeNetworkAcls` naming an ACL id that does not exist, as AWS gives it
/// (`InvalidNetworkAclID.NotFound`); the emulator answers `InvalidRouteTableID.NotFound`.
fn acl_not_found(answer: &str) -> String {
    answer
        .replace(
            "<Code>InvalidRouteTableID.NotFound</Code>",
            "<Code>InvalidNetworkAclID.NotFound</Code>",
        )
        .replace("The routeTable ID '", "The network ACL '")
}

#[cfg(test)]
mod tests {
    use super::{
        acl_not_found, activities_answer, members, paged, rfc3339_ago, tag_values, ScalingActivity,
    };

    const POLICIES: &str = "<DescribePoliciesResponse><DescribePoliciesResult><ScalingPolicies>\
<member><PolicyName>a</PolicyName><Alarms><member><AlarmName>x</AlarmName></member></Alarms></member>\
<member><PolicyName>b</PolicyName></member>\
<member><PolicyName>c</PolicyName></member>\
</ScalingPolicies></DescribePoliciesResult><ResponseMetadata/></DescribePoliciesResponse>";

    fn params(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn an_acl_entry_is_found_by_its_number_and_direction() {
        let xml = "<networkAclSet><item><entrySet><item><egress>false</egress><portRange><from>80</from><to>80</to></portRange><ruleNumber>100</ruleNumber></item><item><egress>true</egress><ruleNumber>110</ruleNumber></item></entrySet><networkAclId>acl-1</networkAclId></item></networkAclSet>";
        assert!(super::acl_entry_exists(xml, "100", "false"));
        assert!(super::acl_entry_exists(xml, "110", "true"));
        assert!(!super::acl_entry_exists(xml, "100", "true"));
        assert!(!super::acl_entry_exists(xml, "120", "false"));
        assert!(!super::acl_entry_exists("<networkAclSet/>", "100", "false"));
    }

    #[test]
    fn members_are_the_lists_own_not_those_nested_in_them() {
        let (_, items, _) = members(POLICIES, "ScalingPolicies").unwrap();
        assert_eq!(items.len(), 3);
        assert!(items[0].contains("<AlarmName>x</AlarmName></member></Alarms></member>"));
        assert!(members(POLICIES, "MetricAlarms").is_none());
    }

    #[test]
    fn times_ago_are_rfc3339_in_utc() {
        let now = rfc3339_ago(0);
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z'), "{now}");
        assert!(rfc3339_ago(86_400) < now && rfc3339_ago(400 * 86_400) < rfc3339_ago(86_400));
    }

    #[test]
    fn scaling_activities_come_in_progress_first_then_newest_first_by_group() {
        let a = ScalingActivity::started_ago;
        let all = [
            a("old", "g1", "Successful", 900),
            a("new", "g2", "Successful", 10),
            a("running", "g1", "InProgress", 5000),
        ];
        let ids = |xml: &str| tag_values(xml, "ActivityId");
        let account = activities_answer(&all, &[], usize::MAX).unwrap();
        assert_eq!(ids(&account), ["running", "new", "old"]);
        let g1 = activities_answer(&all, &params(&[("AutoScalingGroupName", "g1")]), 1).unwrap();
        assert_eq!(ids(&g1), ["running"]);
        assert!(
            g1.contains("<NextToken>proxy-page-1</NextToken></DescribeScalingActivitiesResult>")
        );
    }

    #[test]
    fn pages_follow_next_token_to_the_end() {
        let page = |p: &[(&str, &str)]| {
            paged(
                POLICIES,
                "ScalingPolicies",
                "DescribePoliciesResult",
                &params(p),
                2,
                50,
            )
        };
        let first = page(&[]).unwrap();
        assert!(first.contains("<PolicyName>a</PolicyName>") && first.contains(">b<"));
        assert!(!first.contains(">c<"));
        assert!(first.contains("<NextToken>proxy-page-2</NextToken></DescribePoliciesResult>"));
        let last = page(&[("NextToken", "proxy-page-2")]).unwrap();
        assert!(last.contains(">c<") && !last.contains(">a<") && !last.contains("NextToken"));
        let one = page(&[("MaxRecords", "1")]).unwrap();
        assert!(one.contains(">a<") && !one.contains(">b<") && one.contains("proxy-page-1"));
        assert_eq!(
            page(&[("MaxRecords", "101")]).unwrap_err().0,
            "ValidationError"
        );
        assert_eq!(
            page(&[("NextToken", "x")]).unwrap_err().0,
            "InvalidNextToken"
        );
    }

    #[test]
    fn a_missing_network_acl_is_answered_with_ec2s_own_code() {
        let moto = "<Response><Errors><Error><Code>InvalidRouteTableID.NotFound</Code><Message>The routeTable ID 'acl-1' does not exist</Message></Error></Errors></Response>";
        assert_eq!(
            acl_not_found(moto),
            "<Response><Errors><Error><Code>InvalidNetworkAclID.NotFound</Code><Message>The network ACL 'acl-1' does not exist</Message></Error></Errors></Response>"
        );
    }
}

// CloudWatch's distributions and extended statistics. moto keeps no distribution and answers
// no percentile: a `PutMetricData` datum given as `Values` and `Counts` is kept here (and
// passed on to moto as the `StatisticValues` it summarises, which moto does keep), and the
// queries of a `GetMetricData` whose statistic is a percentile (`p95`) or a percentile rank
// (`PR(:0.4)`, `PR(0.1:0.4)`) are answered here from those distributions, in CloudWatch's own
// answer shape beside moto's answers to the others. Buckets as moto's (and CloudWatch's):
// from `StartTime` a period at a time, a bucket without data left out.

/// One `PutMetricData` datum given as a distribution.
#[derive(Debug, Clone)]
struct Distribution {
    metric: String,
    dimensions: Vec<(String, String)>,
    at: i64,
    /// (value, count).
    values: Vec<(f64, f64)>,
}

/// Unix seconds of an RFC 3339 time in UTC (`2026-12-07T20:00:00Z`, fractions and `+00:00`
/// taken).
pub fn unix_of_rfc3339(text: &str) -> Option<i64> {
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let time = time.trim_end_matches('Z');
    let time = time.split('+').next()?;
    let mut t = time.split(':');
    let (h, min) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let s = t.next()?.split('.').next()?.parse::<i64>().ok()?;
    // Days from 1970-01-01 (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + min * 60 + s)
}

/// The datum members of a Query-protocol list (`MetricData.member.N.…`): N → its keys after
/// the prefix, in N's order.
fn param_members(
    params: &[(String, String)],
    list: &str,
) -> BTreeMap<usize, Vec<(String, String)>> {
    let prefix = format!("{list}.member.");
    let mut out: BTreeMap<usize, Vec<(String, String)>> = BTreeMap::new();
    for (k, v) in params {
        let Some(rest) = k.strip_prefix(&prefix) else {
            continue;
        };
        let Some((n, key)) = rest.split_once('.') else {
            continue;
        };
        if let Ok(n) = n.parse() {
            out.entry(n).or_default().push((key.to_owned(), v.clone()));
        }
    }
    out
}

/// The values of `Name.member.N` keys in N's order.
fn listed(fields: &[(String, String)], name: &str) -> Vec<String> {
    let prefix = format!("{name}.member.");
    let mut found: Vec<(usize, String)> = fields
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.parse().ok()?, v.clone())))
        .collect();
    found.sort();
    found.into_iter().map(|(_, v)| v).collect()
}

/// Dimensions of a datum or metric (`…Dimensions.member.N.Name` / `.Value`), sorted.
fn dimensions_of(fields: &[(String, String)], prefix: &str) -> Vec<(String, String)> {
    let inner: Vec<(String, String)> = fields
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_owned(), v.clone())))
        .collect();
    let mut dims: Vec<(String, String)> = param_members(&inner, "Dimensions")
        .into_values()
        .filter_map(|f| {
            let get = |n: &str| f.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
            Some((get("Name")?, get("Value")?))
        })
        .collect();
    dims.sort();
    dims
}

fn form(params: &[(String, String)]) -> Bytes {
    Bytes::from(
        params
            .iter()
            .map(|(k, v)| format!("{}={}", urlencoding::encode(k), urlencoding::encode(v)))
            .collect::<Vec<_>>()
            .join("&"),
    )
}

/// A `PutMetricData`'s distributions kept, and the body to pass on with each of them as its
/// `StatisticValues`.
fn keep_distributions(state: &Mutex<ProxyState>, body: &[u8]) -> Bytes {
    let params = url_decode_pairs(body);
    let data = param_members(&params, "MetricData");
    let mut kept = Vec::new();
    let mut out: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| !k.starts_with("MetricData.member."))
        .cloned()
        .collect();
    for (n, fields) in &data {
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let values = listed(fields, "Values");
        let mut rest: Vec<(String, String)> = fields
            .iter()
            .filter(|(k, _)| !k.starts_with("Values.") && !k.starts_with("Counts."))
            .cloned()
            .collect();
        if !values.is_empty() {
            let counts = listed(fields, "Counts");
            let pairs: Vec<(f64, f64)> = values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    let c = counts.get(i).map_or(Some(1.0), |c| c.parse().ok())?;
                    Some((v.parse().ok()?, c))
                })
                .collect();
            let n_of = pairs.iter().map(|p| p.1).sum::<f64>();
            let sum = pairs.iter().map(|(v, c)| v * c).sum::<f64>();
            let min = pairs.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
            let max = pairs.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
            for (k, v) in [
                ("StatisticValues.SampleCount", n_of),
                ("StatisticValues.Sum", sum),
                ("StatisticValues.Minimum", min),
                ("StatisticValues.Maximum", max),
            ] {
                rest.push((k.to_owned(), v.to_string()));
            }
            kept.push(Distribution {
                metric: get("MetricName").unwrap_or_default(),
                dimensions: dimensions_of(fields, ""),
                at: get("Timestamp")
                    .and_then(|t| unix_of_rfc3339(&t))
                    .unwrap_or_default(),
                values: pairs,
            });
        }
        out.extend(
            rest.into_iter()
                .map(|(k, v)| (format!("MetricData.member.{n}.{k}"), v)),
        );
    }
    state.lock().unwrap().distributions.extend(kept);
    form(&out)
}

/// Whether a statistic is one moto cannot answer: a percentile or percentile rank.
fn extended(stat: &str) -> bool {
    stat.starts_with("PR(") || (stat.starts_with('p') && stat[1..].parse::<f64>().is_ok())
}

/// An extended statistic of `values` ((value, count)): `pNN` by nearest rank, `PR(lo:hi)` the
/// percentage of counts with a value in (lo, hi].
fn statistic(stat: &str, values: &[(f64, f64)]) -> Option<f64> {
    let total: f64 = values.iter().map(|v| v.1).sum();
    if total <= 0.0 {
        return None;
    }
    if let Some(range) = stat.strip_prefix("PR(").and_then(|r| r.strip_suffix(')')) {
        let (lo, hi) = range.split_once(':')?;
        let lo: f64 = if lo.is_empty() {
            f64::NEG_INFINITY
        } else {
            lo.parse().ok()?
        };
        let hi: f64 = if hi.is_empty() {
            f64::INFINITY
        } else {
            hi.parse().ok()?
        };
        let inside: f64 = values
            .iter()
            .filter(|(v, _)| *v > lo && *v <= hi)
            .map(|v| v.1)
            .sum();
        return Some(100.0 * inside / total);
    }
    let q: f64 = stat[1..].parse().ok()?;
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let rank = (q / 100.0 * total).ceil().max(1.0);
    let mut seen = 0.0;
    for (v, c) in sorted {
        seen += c;
        if seen >= rank {
            return Some(v);
        }
    }
    None
}

/// CloudWatch's `<member>` of one query's answer.
fn result_member(id: &str, label: &str, points: &[(i64, f64)]) -> String {
    let times: String = points
        .iter()
        .map(|(t, _)| format!("<member>{}</member>", rfc3339_at(*t as u64)))
        .collect();
    let values: String = points
        .iter()
        .map(|(_, v)| format!("<member>{v}</member>"))
        .collect();
    format!(
        "<member><Id>{}</Id><Label>{}</Label><Timestamps>{times}</Timestamps><Values>{values}</Values><StatusCode>Complete</StatusCode></member>",
        xml_text(id),
        xml_text(label)
    )
}

/// A `GetMetricData` with extended statistics: moto answers the others (their members passed
/// on alone), this proxy the extended ones, in one answer. `None` when it has none.
async fn metric_data_with_percentiles(
    s: &Shared,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response> {
    let params = url_decode_pairs(body);
    let queries = param_members(&params, "MetricDataQueries");
    let stat_of = |f: &[(String, String)]| {
        f.iter()
            .find(|(k, _)| k == "MetricStat.Stat")
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    if !queries.values().any(|f| extended(&stat_of(f))) {
        return None;
    }
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let start = param("StartTime").and_then(|t| unix_of_rfc3339(&t))?;
    let end = param("EndTime").and_then(|t| unix_of_rfc3339(&t))?;
    let mut ours = String::new();
    let mut passed: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| !k.starts_with("MetricDataQueries.member."))
        .cloned()
        .collect();
    let mut n = 0;
    for fields in queries.values() {
        let stat = stat_of(fields);
        if !extended(&stat) {
            n += 1;
            passed.extend(
                fields
                    .iter()
                    .map(|(k, v)| (format!("MetricDataQueries.member.{n}.{k}"), v.clone())),
            );
            continue;
        }
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let id = get("Id").unwrap_or_default();
        let metric = get("MetricStat.Metric.MetricName").unwrap_or_default();
        let dims = dimensions_of(fields, "MetricStat.Metric.");
        let period: i64 = get("MetricStat.Period")
            .and_then(|p| p.parse().ok())
            .unwrap_or(60)
            .max(1);
        let points: Vec<(i64, f64)> = {
            let state = s.state.lock().unwrap();
            let mine: Vec<&Distribution> = state
                .distributions
                .iter()
                .filter(|d| d.metric == metric && d.dimensions == dims)
                .collect();
            let mut out = Vec::new();
            let mut t = start;
            while t < end {
                let values: Vec<(f64, f64)> = mine
                    .iter()
                    .filter(|d| d.at >= t && d.at < t + period)
                    .flat_map(|d| d.values.iter().copied())
                    .collect();
                if let Some(v) = statistic(&stat, &values) {
                    out.push((t, v));
                }
                t += period;
            }
            out
        };
        ours.push_str(&result_member(&id, &format!("{metric} {stat}"), &points));
    }
    let theirs = if n == 0 {
        String::new()
    } else {
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let mut req = s
            .http
            .post(format!("{}{path}", s.upstream))
            .body(form(&passed));
        for (name, value) in headers {
            if name != "host" && name != "content-length" {
                req = req.header(name, value);
            }
        }
        let res = req.send().await.ok()?;
        if !res.status().is_success() {
            let status = res.status();
            let text = res.text().await.unwrap_or_default();
            return Some((status, [("content-type", "text/xml")], text).into_response());
        }
        let text = res.text().await.ok()?;
        let (a, b) = (
            text.find("<MetricDataResults>")? + "<MetricDataResults>".len(),
            text.find("</MetricDataResults>")?,
        );
        text[a..b].to_owned()
    };
    let xml = format!(
        "<GetMetricDataResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\"><GetMetricDataResult><MetricDataResults>{theirs}{ours}</MetricDataResults><Messages/></GetMetricDataResult><ResponseMetadata><RequestId>fault-proxy</RequestId></ResponseMetadata></GetMetricDataResponse>"
    );
    Some((StatusCode::OK, [("content-type", "text/xml")], xml).into_response())
}

#[cfg(test)]
mod cloudwatch_tests {
    use super::*;

    #[test]
    fn percentiles_and_ranks_are_read_from_the_distribution() {
        let v = [(0.1, 90.0), (0.5, 8.0), (2.0, 2.0)];
        assert_eq!(statistic("p50", &v), Some(0.1));
        assert_eq!(statistic("p95", &v), Some(0.5));
        assert_eq!(statistic("p99", &v), Some(2.0));
        assert_eq!(statistic("PR(:0.4)", &v), Some(90.0));
        assert_eq!(statistic("PR(0.1:0.5)", &v), Some(8.0));
        assert_eq!(statistic("p95", &[]), None);
        assert!(extended("p99.9") && extended("PR(:0.4)") && !extended("Sum"));
        assert_eq!(unix_of_rfc3339("2026-12-07T20:00:00Z"), Some(1_796_673_600));
        assert_eq!(
            unix_of_rfc3339("2026-12-07T20:00:00.000+00:00"),
            Some(1_796_673_600)
        );
        assert_eq!(rfc3339_at(1_796_673_600), "2026-12-07T20:00:00Z");
    }
}
