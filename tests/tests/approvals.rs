//! The approval workflow against the AWS emulator: guardrails, four-eyes approvals pinned to
//! the plan, the gates before an apply, auto-apply and notifications.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{json, Value};
use tierdeck_tests::aws::query;
use tierdeck_tests::git::{SpecRepo, SEJIN, SEUNG};
use tierdeck_tests::{error_of, wait_for, Api, Moto, TestApp, NO_APPROVAL_FLOOR};

async fn approve(api: &Api, id: i64) -> reqwest::Response {
    api.post_json(
        &format!("/api/v1/changes/{id}/approve"),
        json!({ "comment": "looks right" }),
    )
    .await
}

#[tokio::test]
async fn roles_may_do_what_their_role_allows_through_the_api_and_the_page_forms() {
    let moto = Moto::sandboxed().await;
    let repo = SpecRepo::petclinic_any_time();
    let app = TestApp::watching(&repo.url(), 3600, Some(&moto.url)).await;
    let viewer = app.api_as("vic", "viewer").await;
    let approver = app.api_as("ann", "approver").await;
    let operator = app.api_as("olga", "operator").await;
    let admin = app.api_as("adam", "admin").await;
    let id = viewer.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    viewer.planned(id).await;

    // (role, approve, reject, apply, reconcile, sync): 403 where the role is too low.
    let actions = ["approve", "reject", "apply"];
    for (api, name, allowed) in [
        (&viewer, "viewer", [false, false, false]),
        (&approver, "approver", [true, true, false]),
        (&operator, "operator", [true, true, true]),
        (&admin, "admin", [true, true, true]),
    ] {
        for (action, allowed) in actions.iter().zip(allowed) {
            // A rejection without a reason: 422 for those allowed, 403 for the rest; approvals
            // and applies by those allowed are tried for real further down.
            let res = match *action {
                "reject" => {
                    api.post_json(&format!("/api/v1/changes/{id}/reject"), json!({}))
                        .await
                }
                _ if allowed => continue,
                a => api.post(&format!("/api/v1/changes/{id}/{a}")).await,
            };
            let expected = if allowed { 422 } else { 403 };
            assert_eq!(res.status(), expected, "{name} {action}");
        }
        let res = api.post("/api/v1/environments/prod/reconcile").await;
        let expected = if name == "viewer" || name == "approver" {
            403
        } else {
            409 // never applied: nothing to reconcile to
        };
        assert_eq!(res.status(), expected, "{name} reconcile");
        let res = api.post("/api/v1/sync").await;
        let expected = if expected == 403 { 403 } else { 200 };
        assert_eq!(res.status(), expected, "{name} sync");
    }

    // The page forms (server functions, session cookie) check the same.
    app.add_user("vera", "viewer").await;
    app.add_user("abe", "approver").await;
    let id_text = id.to_string();
    for (who, refused) in [
        (
            "vera",
            &["approve", "reject", "apply", "reconcile", "sync"][..],
        ),
        ("abe", &["apply", "reconcile", "sync"][..]),
    ] {
        let page = app.login(who).await;
        for name in refused {
            let res = page
                .server_fn(name, &[("id", &id_text), ("reason", "no"), ("env", "prod")])
                .await;
            assert_eq!(res.status(), 403, "{who} {name} through the form");
        }
    }
    // "Waiting for you" (the overview's load): the approver's list has the change; a viewer's
    // overview neither reads nor ships one.
    let abe = app.login("abe").await;
    let overview: Value = abe.server_fn("overview", &[]).await.json().await.unwrap();
    let waiting = &overview["waiting"]["Ok"];
    let ids: Vec<i64> = waiting
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert!(ids.contains(&id), "{waiting}");
    let vera = app.login("vera").await;
    let overview: Value = vera.server_fn("overview", &[]).await.json().await.unwrap();
    assert_eq!(overview["waiting"], Value::Null, "{overview}");

    // An operator applies before any approval: refused, with the reason, and audited.
    let (code, message) =
        error_of(operator.post(&format!("/api/v1/changes/{id}/apply")).await).await;
    assert_eq!(code, 409);
    assert!(
        message.contains("needs 2 approvals of its current plan; it has 0"),
        "{message}"
    );
    assert!(operator
        .audit_actions("action=change.apply_refused")
        .await
        .contains(&"change.apply_refused".to_owned()));

    // Two approvals by two people, one each.
    assert_eq!(approve(&approver, id).await.status(), 200);
    let (code, message) = error_of(approve(&approver, id).await).await;
    assert_eq!(
        (code, message.as_str()),
        (409, "You approved this change already.")
    );
    assert_eq!(viewer.status_of(id).await, "pending");
    let res = approve(&admin, id).await;
    assert_eq!(res.status(), 200);
    let d: Value = res.json().await.unwrap();
    assert_eq!(d["status"], "approved");
    assert_eq!(d["approvals"]["counted"], 2);
    assert_eq!(d["approvals"]["reviews"][0]["comment"], "looks right");

    let res = operator.post(&format!("/api/v1/changes/{id}/apply")).await;
    assert_eq!(res.status(), 202);
    wait_for("the apply", 60, || async {
        (viewer.status_of(id).await == "applied").then_some(())
    })
    .await;
    let started = operator
        .get_json("/api/v1/audit?action=change.apply_started")
        .await;
    let mut approvers = started["events"][0]["detail"]["approvers"]
        .as_array()
        .unwrap()
        .clone();
    approvers.sort_by_key(|v| v.to_string());
    assert_eq!(approvers, [json!("adam"), json!("ann")]);
}

#[tokio::test]
async fn authors_cannot_approve_and_new_commits_or_live_changes_void_approvals() {
    let moto = Moto::sandboxed().await;
    let repo = SpecRepo::petclinic_any_time();
    let app = TestApp::watching(&repo.url(), 3600, Some(&moto.url)).await;
    // Sejin wrote the first commit.
    let sejin = app.api_with_email("sejin", "approver", SEJIN.1).await;
    let ann = app.api_as("ann", "approver").await;
    let bo = app.api_as("bo", "approver").await;
    let olga = app.api_as("olga", "operator").await;
    let first = ann.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    ann.planned(first).await;
    let (code, message) = error_of(approve(&sejin, first).await).await;
    assert_eq!(code, 403);
    assert!(message.contains("You wrote this change"), "{message}");
    let d = sejin.get_json(&format!("/api/v1/changes/{first}")).await;
    assert_eq!(d["actions"]["approve"]["state"], "denied");

    // One approval, then a new commit: the new change starts from none.
    assert_eq!(approve(&ann, first).await.status(), 200);
    let commit = repo.raise_was_peak(SEUNG);
    assert_eq!(olga.post("/api/v1/sync").await.status(), 200);
    let second = ann.change_for("prod", &commit).await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(ann.status_of(first).await, "superseded");
    let d = ann.planned(second).await;
    assert_eq!(d["approvals"]["counted"], 0);
    // Sejin's first commit was never applied: it is part of this change too.
    assert_eq!(approve(&sejin, second).await.status(), 403);
    assert_eq!(
        d["authors"].as_array().unwrap().len(),
        2,
        "{}",
        d["authors"]
    );
    assert_eq!(approve(&ann, second).await.status(), 200);
    assert_eq!(approve(&bo, second).await.status(), 200);
    assert_eq!(ann.status_of(second).await, "approved");

    // Someone changes AWS between the approvals and the apply: the approvals are void.
    query(
        &moto.url,
        "autoscaling",
        "UpdateAutoScalingGroup",
        &[
            ("AutoScalingGroupName", "petclinic-prod-web"),
            ("MaxSize", "4"),
        ],
    )
    .await;
    let (code, message) =
        error_of(olga.post(&format!("/api/v1/changes/{second}/apply")).await).await;
    assert_eq!(code, 409);
    assert!(
        message.contains("the live state changed since the plan was made")
            && message.contains("2 approval(s) of the old plan are void"),
        "{message}"
    );
    let d = ann.get_json(&format!("/api/v1/changes/{second}")).await;
    assert_eq!(d["status"], "pending");
    assert_eq!(d["approvals"]["counted"], 0);
    let reasons: Vec<&str> = d["approvals"]["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["not_counted"].as_str())
        .collect();
    assert_eq!(reasons.len(), 2);
    assert!(
        reasons.iter().all(|r| r.starts_with("voided")),
        "{reasons:?}"
    );
    assert!(ann
        .audit_actions("action=change.approvals_voided")
        .await
        .contains(&"change.approvals_voided".to_owned()));
    // Approving again is possible: the new plan.
    assert_eq!(approve(&ann, second).await.status(), 200);

    // A rejection needs a reason and ends the change.
    let (code, message) = error_of(
        bo.post_json(
            &format!("/api/v1/changes/{second}/reject"),
            json!({ "reason": "  " }),
        )
        .await,
    )
    .await;
    assert_eq!((code, message.as_str()), (422, "reason: give a reason"));
    let res = bo
        .post_json(
            &format!("/api/v1/changes/{second}/reject"),
            json!({ "reason": "not before the sale" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(ann.status_of(second).await, "rejected");
    assert_eq!(error_of(approve(&bo, second).await).await.0, 409);
}

#[tokio::test]
async fn guardrails_block_a_change_and_name_the_line() {
    let repo = SpecRepo::petclinic_with(|work| {
        let p = work.join("environments/prod/autoscaling.yaml");
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, text.replacen("    min: 2\n", "    min: 1\n", 1)).unwrap();
    });
    let app = TestApp::watching(&repo.url(), 3600, None).await;
    let ann = app.api_as("ann", "approver").await;
    let olga = app.api_as("olga", "operator").await;
    let c = ann.change_for("prod", &repo.head()).await;
    assert_eq!(c["status"], "blocked");
    let id = c["id"].as_i64().unwrap();
    let d = ann.get_json(&format!("/api/v1/changes/{id}")).await;
    let v = &d["guardrails"][0];
    assert_eq!(v["rule"], "min-instances");
    assert_eq!(v["file"], "environments/prod/autoscaling.yaml");
    assert!(v["line"].as_u64().unwrap() > 1);
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("min 1 is below the guardrail min_instances 2"));
    assert_eq!(error_of(approve(&ann, id).await).await.0, 409);
    let (code, message) = error_of(olga.post(&format!("/api/v1/changes/{id}/apply")).await).await;
    assert_eq!(code, 409);
    assert!(message.contains("blocked by guardrails"), "{message}");
    // Staging keeps its own, lower limits: its change is pending.
    assert_eq!(
        ann.change_for("staging", &repo.head()).await["status"],
        "pending"
    );
}

/// A change window that does not contain the current minute: one minute, twelve hours away.
fn closed_window() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let minute = (secs / 60 + 12 * 60) % (24 * 60);
    let (h, m) = (minute / 60, minute % 60);
    let end = (minute + 1) % (24 * 60);
    format!(
        "  change_windows:\n    - {{ days: [mon, tue, wed, thu, fri, sat, sun], start: \"{h:02}:{m:02}\", end: \"{:02}:{:02}\", timezone: UTC }}\n",
        end / 60,
        end % 60
    )
}

#[tokio::test]
async fn outside_the_change_windows_only_an_emergency_applies_and_everyone_hears_of_it() {
    let moto = Moto::sandboxed().await;
    let window = closed_window();
    let repo = SpecRepo::petclinic_with(move |work| {
        let p = work.join("environments/prod/environment.yaml");
        let text = std::fs::read_to_string(&p).unwrap();
        let text: String = text
            .lines()
            .filter(|l| !l.contains("change_windows") && !l.contains("days: ["))
            .map(|l| format!("{}\n", l.replace("required: 2", "required: 0")))
            .collect();
        std::fs::write(
            &p,
            text.replace("  guardrails:\n", &format!("{window}  guardrails:\n")),
        )
        .unwrap();
    });
    let receiver = Receiver::start(2).await;
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&moto.url),
        &[
            NO_APPROVAL_FLOOR,
            ("TIERDECK_NOTIFICATIONS__SLACK_URL", &receiver.url),
            ("TIERDECK_NOTIFICATIONS__WEBHOOK_URL", &receiver.url),
            ("TIERDECK_NOTIFICATIONS__FIRST_RETRY_SECS", "1"),
        ],
    )
    .await;
    let olga = app.api_as("olga", "operator").await;
    let admin = app.api_as("adam", "admin").await;
    let id = olga.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    let d = olga.planned(id).await;
    assert_eq!(d["actions"]["apply_needs_emergency"], true);

    let (code, message) = error_of(olga.post(&format!("/api/v1/changes/{id}/apply")).await).await;
    assert_eq!(code, 409);
    assert!(
        message.contains("outside the change windows of prod"),
        "{message}"
    );
    let (code, message) = error_of(
        olga.post_json(
            &format!("/api/v1/changes/{id}/apply"),
            json!({ "emergency": true }),
        )
        .await,
    )
    .await;
    assert_eq!(
        (code, message.as_str()),
        (422, "reason: an emergency apply needs a reason")
    );
    let res = olga
        .post_json(
            &format!("/api/v1/changes/{id}/apply"),
            json!({ "emergency": true, "reason": "checkout is down at 50 % CPU" }),
        )
        .await;
    assert_eq!(res.status(), 202);
    wait_for("the emergency apply", 60, || async {
        (olga.status_of(id).await == "applied").then_some(())
    })
    .await;
    let d = olga.get_json(&format!("/api/v1/changes/{id}")).await;
    assert_eq!(d["apply"]["emergency"], "checkout is down at 50 % CPU");
    assert!(olga
        .audit_actions("action=change.emergency_apply")
        .await
        .contains(&"change.emergency_apply".to_owned()));

    // The receiver failed twice, then took every notification: Slack text and generic JSON.
    let got = wait_for("the notifications", 30, || async {
        let got = receiver.bodies();
        (got.iter().filter(|b| b["event"] == "applied").count() == 1).then_some(got)
    })
    .await;
    assert!(
        got.iter().any(|b| b["text"]
            .as_str()
            .is_some_and(|t| t.contains("EMERGENCY") && t.contains("checkout is down"))
            && b.get("event").is_none()),
        "a Slack-style body: {got:#?}"
    );
    assert!(got
        .iter()
        .any(|b| b["event"] == "emergency_apply" && b["change"] == id));
    // Those that failed are retried after a second, then two.
    let log = wait_for("every notification delivered", 30, || async {
        let log = admin.get_json("/api/v1/notifications").await;
        let log = log.as_array().unwrap().clone();
        log.iter()
            .all(|d| d["status"] == "delivered")
            .then_some(log)
    })
    .await;
    assert!(
        log.iter().any(|d| d["attempts"].as_i64().unwrap() >= 2),
        "the first deliveries were retried: {log:#?}"
    );
    assert_eq!(olga.get("/api/v1/notifications").await.status(), 403);
}

#[tokio::test]
async fn staging_applies_itself_once_approved_but_never_its_first_apply() {
    let moto = Moto::sandboxed().await;
    let repo = SpecRepo::petclinic();
    let receiver = Receiver::start(0).await;
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&moto.url),
        &[("TIERDECK_NOTIFICATIONS__WEBHOOK_URL", &receiver.url)],
    )
    .await;
    let ann = app.api_as("ann", "approver").await;
    let olga = app.api_as("olga", "operator").await;
    let first = ann.change_for("staging", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    let d = ann.planned(first).await;
    assert_eq!(d["policy"]["basis"]["from"], "first_apply");
    assert_eq!(d["policy"]["auto_apply"], false);
    assert_eq!(approve(&ann, first).await.status(), 200);
    // Its first apply is an operator's, even with `auto_apply`.
    assert_eq!(ann.status_of(first).await, "approved");
    assert!(ann
        .audit_actions("action=change.apply_started&env=staging")
        .await
        .is_empty());
    assert_eq!(
        olga.post(&format!("/api/v1/changes/{first}/apply"))
            .await
            .status(),
        202
    );
    wait_for("the first apply", 60, || async {
        (ann.status_of(first).await == "applied").then_some(())
    })
    .await;

    // From then on, the applied rules let staging apply itself once approved.
    let commit = repo.commit(
        SEUNG,
        "Staging web: up to 3 at night",
        repo.replace_in(
            "environments/staging/autoscaling.yaml",
            "min: 1, max: 2, desired: 1 }",
            "min: 1, max: 3, desired: 1 }",
        ),
    );
    assert_eq!(olga.post("/api/v1/sync").await.status(), 200);
    let id = ann.change_for("staging", &commit).await["id"]
        .as_i64()
        .unwrap();
    let d = ann.planned(id).await;
    assert_eq!(d["policy"]["auto_apply"], true, "{:#}", d["policy"]);
    assert_eq!(approve(&ann, id).await.status(), 200);
    wait_for("staging to apply itself", 60, || async {
        (ann.status_of(id).await == "applied").then_some(())
    })
    .await;
    let started = ann
        .get_json("/api/v1/audit?action=change.apply_started&env=staging")
        .await;
    let e = &started["events"][0];
    assert_eq!(e["actor"], "system");
    assert_eq!(e["detail"]["approvers"], json!(["ann"]));
    let xml = query(
        &moto.url,
        "autoscaling",
        "DescribeAutoScalingGroups",
        &[("AutoScalingGroupNames.member.1", "petclinic-staging-web")],
    )
    .await;
    assert!(xml.contains("<MaxSize>4</MaxSize>"), "{xml}");
    let events = wait_for("approval and apply notifications", 20, || async {
        let events: Vec<String> = receiver
            .bodies()
            .iter()
            .map(|b| b["event"].as_str().unwrap_or_default().to_owned())
            .collect();
        (events.iter().filter(|e| *e == "applied").count() == 2).then_some(events)
    })
    .await;
    for e in ["approval_needed", "approved", "applied"] {
        assert!(events.contains(&e.to_owned()), "{e}: {events:?}");
    }
}

/// Failures still to answer, and the bodies received.
type Inbox = Arc<Mutex<(u32, Vec<Value>)>>;

/// A local webhook receiver that fails its first `failures` requests with 500.
struct Receiver {
    url: String,
    state: Inbox,
    _task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(failures: u32) -> Receiver {
        let state = Arc::new(Mutex::new((failures, Vec::new())));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            url,
            state,
            _task: task,
        }
    }

    fn bodies(&self) -> Vec<Value> {
        self.state.lock().unwrap().1.clone()
    }
}

async fn receive(State(state): State<Inbox>, body: axum::body::Bytes) -> StatusCode {
    let mut s = state.lock().unwrap();
    if s.0 > 0 {
        s.0 -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    s.1.push(serde_json::from_slice(&body).unwrap_or_default());
    StatusCode::OK
}

#[tokio::test]
async fn an_approver_without_an_email_is_told_the_remedy_and_every_door_to_it_works() {
    let moto = Moto::sandboxed().await;
    let repo = SpecRepo::petclinic_any_time();
    let app = TestApp::watching(&repo.url(), 3600, Some(&moto.url)).await;
    app.add_user_as("noel", "approver", None).await;
    let noel = app.api_for("noel").await;
    let root = app.api_as("root", "admin").await;
    let _sejin = app.api_with_email("sejin", "approver", SEJIN.1).await;
    let first = root.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    root.planned(first).await;

    // The refusal names a remedy that exists: the Admin page, and the command line.
    let (code, message) = error_of(approve(&noel, first).await).await;
    assert_eq!(code, 403);
    assert!(
        message
            .contains("an admin can set one on the Admin page or with `tierdeck user set-email`"),
        "{message}"
    );
    let admin_page = app
        .login("root")
        .await
        .get("/admin")
        .await
        .text()
        .await
        .unwrap();
    let admin_page = tierdeck_tests::without_markers(&admin_page);
    assert!(
        admin_page.contains("New e-mail of noel") && admin_page.contains("Set e-mail"),
        "the Admin page has the e-mail field it names"
    );
    let help = app.cli(&["user", "--help"], None).await;
    assert!(String::from_utf8_lossy(&help.stdout).contains("set-email"));

    // The API: admins only, a real address, nobody else's.
    let set = |api: &tierdeck_tests::Api, email: &str| {
        let (api, body) = (api.clone(), json!({ "email": email }));
        async move { api.post_json("/api/v1/users/noel/email", body).await }
    };
    assert_eq!(set(&noel, "noel@example.com").await.status(), 403);
    let (code, message) = error_of(set(&root, "not an address").await).await;
    assert_eq!(code, 422, "{message}");
    assert!(message.starts_with("email:"), "{message}");
    let (code, message) = error_of(set(&root, SEJIN.1).await).await;
    assert_eq!(code, 409, "{message}");
    assert!(message.contains("another user already has"), "{message}");
    let res = root
        .post_json(
            "/api/v1/users/nobody/email",
            json!({ "email": "x@example.com" }),
        )
        .await;
    assert_eq!(res.status(), 404);
    let res = set(&root, "Noel@Example.COM").await;
    assert_eq!(res.status(), 200);
    let user: serde_json::Value = res.json().await.unwrap();
    assert_eq!(user["email"], "noel@example.com");
    let users = root.get_json("/api/v1/users").await;
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["name"] == "noel" && u["email"] == "noel@example.com"),
        "{users:#}"
    );
    assert_eq!(noel.get("/api/v1/users").await.status(), 403);

    // Now Noel can approve.
    assert_eq!(approve(&noel, first).await.status(), 200);

    // The command line changes it too; each change is audited with who made it.
    let out = app
        .cli(&["user", "set-email", "noel", "noel.b@example.com"], None)
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "noel's e-mail is now noel.b@example.com\n"
    );
    let out = app.cli(&["user", "set-email", "noel", "nope"], None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("email:"));
    let events = root
        .get_json("/api/v1/audit?action=user.email_changed")
        .await;
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(events[0]["actor"], "system");
    assert_eq!(events[0]["target"], "noel");
    assert_eq!(
        events[0]["detail"],
        json!({ "from": "noel@example.com", "to": "noel.b@example.com" })
    );
    assert_eq!(events[1]["actor"], "root");
    assert_eq!(
        events[1]["detail"],
        json!({ "from": null, "to": "noel@example.com" })
    );
}
