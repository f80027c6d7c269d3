//! The demo team at work, once the demo's panel listens (scripts/demo-run, compose.yaml's
//! `team`): signed in as the demo's people with the demo password, through the panel's own
//! API, so the audit log shows who did what.
//!
//! - An environment never applied gets its first apply: its open change approved by as many
//!   approvers as its rules ask for (none of them an author of it) and applied by the operator
//!   (outside the change windows, or with the error budget spent, as an emergency whose reason
//!   says what the demo does and what the gate said).
//! - An environment applied before, on an emulator that starts anew each run, is brought back
//!   to its last applied commit the same way: a reconcile, approved and applied.
//! - Every other open change is planned again against this run's emulator, so that approvals
//!   given from now on are of the plan an apply will find.
//!
//!     demo-team URL PASSWORD
//!
//! It signs in as `admin` to read who is on the team (`GET /api/v1/users`). Exit 1 with the
//! reason when the team cannot do it.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

/// Statuses of a change that can still be applied.
const OPEN: [&str; 4] = ["pending", "approved", "failed", "interrupted"];

/// One person signed in: a cookie session, and the panel's origin on every request.
struct Member {
    name: String,
    http: reqwest::Client,
    base: String,
}

impl Member {
    async fn sign_in(base: &str, name: &str, password: &str) -> anyhow::Result<Member> {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        let res = http
            .post(format!("{base}/login"))
            .header("Origin", base)
            .form(&[("username", name), ("password", password), ("next", "/")])
            .send()
            .await
            .with_context(|| format!("signing in as {name}"))?;
        // A good sign-in sends the browser on (303) with a session cookie; a bad one shows the
        // form again.
        if res.status() != 303 {
            bail!(
                "{name} cannot sign in with the demo password ({})",
                res.status()
            );
        }
        Ok(Member {
            name: name.to_owned(),
            http,
            base: base.to_owned(),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .header("Origin", &self.base);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req
            .send()
            .await
            .with_context(|| format!("{} {method} {path}", self.name))?;
        let status = res.status().as_u16();
        let value = res.json::<Value>().await.unwrap_or(Value::Null);
        Ok((status, value))
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        match self.call(reqwest::Method::GET, path, None).await? {
            (200, v) => Ok(v),
            (status, v) => Err(anyhow!(
                "GET {path} as {}: {status} {}",
                self.name,
                message(&v)
            )),
        }
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<(u16, Value)> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
}

/// An error answer's message.
fn message(v: &Value) -> String {
    v["error"]["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| v.to_string())
}

/// Polls `check` every 200 ms until it gives an answer, for at most `secs`.
async fn until<T, F, Fut>(what: &str, secs: u64, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("{what} did not happen within {secs} s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Team {
    approvers: Vec<Member>,
    operator: Member,
}

impl Team {
    /// Approves change `id` by as many approvers as it needs, then applies it as the operator
    /// and waits for the apply to end. `why` is the approvals' comment and, outside the change
    /// windows, the emergency's reason.
    async fn approve_and_apply(&self, id: i64, why: &str) -> anyhow::Result<String> {
        let path = format!("/api/v1/changes/{id}");
        let op = &self.operator;
        let planned = until(&format!("the plan of change #{id}"), 120, || async {
            let d = op.get(&path).await?;
            match d["plan"]["state"].as_str() {
                Some("planned") => Ok(Some(d)),
                Some("unavailable") => Err(anyhow!(
                    "change #{id} has no plan: {}",
                    d["plan"]["reason"].as_str().unwrap_or("no reason given")
                )),
                _ => Ok(None),
            }
        })
        .await?;
        if let Some(errors) = planned["plan"]["errors"]
            .as_array()
            .filter(|e| !e.is_empty())
        {
            bail!("the plan of change #{id} has errors: {errors:?}");
        }
        let mut approved_by = Vec::new();
        let mut refused = Vec::new();
        for a in &self.approvers {
            let d = a.get(&path).await?;
            let (required, counted) = (
                d["approvals"]["required"].as_u64().unwrap_or(0),
                d["approvals"]["counted"].as_u64().unwrap_or(0),
            );
            if counted >= required {
                break;
            }
            if d["actions"]["approve"]["state"] != "allowed" {
                refused.push(format!(
                    "{}: {}",
                    a.name,
                    d["actions"]["approve"]["reason"]
                        .as_str()
                        .unwrap_or("not allowed")
                ));
                continue;
            }
            match a
                .post(&format!("{path}/approve"), json!({ "comment": why }))
                .await?
            {
                (200, _) => approved_by.push(a.name.clone()),
                (status, v) => bail!(
                    "{} could not approve change #{id}: {status} {}",
                    a.name,
                    message(&v)
                ),
            }
        }
        let d = op.get(&path).await?;
        if d["approvals"]["counted"].as_u64() < d["approvals"]["required"].as_u64() {
            bail!(
                "change #{id} needs {} approvals and the demo team can give {}: {}",
                d["approvals"]["required"],
                d["approvals"]["counted"],
                refused.join("; ")
            );
        }
        // An environment that applies itself once approved has started already.
        let mut how = format!("approved by {}", approved_by.join(" and "));
        if !matches!(d["status"].as_str(), Some("applying" | "applied")) {
            let apply = format!("{path}/apply");
            let mut answer = op.post(&apply, json!({})).await?;
            // Outside the change windows, or with the error budget spent, only an emergency
            // applies: the reason says what the demo does and what the gate said.
            if answer.0 == 409 && message(&answer.1).contains("emergency") {
                let gate = message(&answer.1);
                how.push_str(&format!(", applied by {} as an emergency", op.name));
                let reason = format!("{why}; the gate said: {gate}");
                answer = op
                    .post(&apply, json!({ "emergency": true, "reason": reason }))
                    .await?;
            } else {
                how.push_str(&format!(", applied by {}", op.name));
            }
            match answer {
                (202, _) => {}
                (status, v) => bail!(
                    "{} could not apply change #{id}: {status} {}",
                    op.name,
                    message(&v)
                ),
            }
        } else {
            how.push_str(", applied by itself (auto_apply)");
        }
        let done = until(&format!("the apply of change #{id}"), 300, || async {
            let d = op.get(&path).await?;
            let busy = d["status"] == "applying" || d["apply"]["status"] == "applying";
            Ok((!busy).then_some(d))
        })
        .await?;
        if done["status"] != "applied" {
            bail!(
                "the apply of change #{id} ended {}: {}",
                done["status"],
                done["apply"]["error"]
                    .as_str()
                    .unwrap_or("no error recorded")
            );
        }
        Ok(how)
    }
}

async fn run(base: &str, password: &str) -> anyhow::Result<()> {
    until("the panel to answer /healthz", 60, || async {
        let up = reqwest::Client::builder()
            .no_proxy()
            .build()?
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        Ok(up.then_some(()))
    })
    .await?;
    let admin = Member::sign_in(base, "admin", password).await?;
    let users = admin.get("/api/v1/users").await?;
    let users = users.as_array().cloned().unwrap_or_default();
    let with_role = |role: &str| -> Vec<String> {
        users
            .iter()
            .filter(|u| u["role"] == role && u["disabled"] == false)
            .filter_map(|u| u["name"].as_str().map(str::to_owned))
            .collect()
    };
    let mut approvers = Vec::new();
    for name in with_role("approver") {
        approvers.push(Member::sign_in(base, &name, password).await?);
    }
    let operator = with_role("operator")
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("the demo team has no operator"))?;
    let team = Team {
        approvers,
        operator: Member::sign_in(base, &operator, password).await?,
    };
    let op = &team.operator;

    // The spec repository as it is now (the watcher may not have fetched it yet).
    match op.post("/api/v1/sync", json!({})).await? {
        (200, _) => {}
        (status, v) => bail!(
            "the spec repository cannot be fetched: {status} {}",
            message(&v)
        ),
    }
    let envs = op.get("/api/v1/environments").await?;
    for env in envs.as_array().cloned().unwrap_or_default() {
        let name = env["name"].as_str().unwrap_or_default().to_owned();
        if env["last_applied_commit"].is_null() {
            let changes = op.get(&format!("/api/v1/changes?env={name}")).await?;
            let Some(change) = changes
                .as_array()
                .and_then(|c| c.iter().find(|c| OPEN.iter().any(|s| c["status"] == *s)))
            else {
                bail!("{name} was never applied and has no change that can be: see its page");
            };
            let id = change["id"].as_i64().unwrap_or_default();
            let why = format!("The demo's first apply of {name} (scripts/demo)");
            let how = team.approve_and_apply(id, &why).await?;
            println!("{name}: change #{id} applied, the first apply ({how})");
            continue;
        }
        match op
            .post(&format!("/api/v1/environments/{name}/reconcile"), json!({}))
            .await?
        {
            (201, change) => {
                let id = change["id"].as_i64().unwrap_or_default();
                let why = format!(
                    "The demo's emulator starts anew each run: {name} back to its last applied commit (scripts/demo)"
                );
                let how = team.approve_and_apply(id, &why).await?;
                println!("{name}: reconcile #{id} applied, the new emulator is back at the applied commit ({how})");
            }
            (409, v) => println!("{name}: {}", message(&v)),
            (status, v) => bail!("{name} cannot be reconciled: {status} {}", message(&v)),
        }
    }
    // What is still open was planned against an earlier emulator.
    let changes = op.get("/api/v1/changes").await?;
    for change in changes.as_array().cloned().unwrap_or_default() {
        if !OPEN.iter().any(|s| change["status"] == *s) {
            continue;
        }
        let id = change["id"].as_i64().unwrap_or_default();
        match op
            .post(&format!("/api/v1/changes/{id}/plan"), json!({}))
            .await?
        {
            (200, _) => println!(
                "{}: change #{id} planned again against this run's emulator",
                change["environment"].as_str().unwrap_or_default()
            ),
            (status, v) => bail!(
                "change #{id} cannot be planned again: {status} {}",
                message(&v)
            ),
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, password] = args.as_slice() else {
        eprintln!("usage: demo-team URL PASSWORD");
        return ExitCode::from(2);
    };
    match run(base.trim_end_matches('/'), password).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo-team: {e:#}");
            ExitCode::FAILURE
        }
    }
}
