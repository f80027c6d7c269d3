//! A change is judged by the environment's rules as applied, never by its own: policy changes,
//! the authors of a range of commits, approvers without an e-mail, plans that move under
//! approvals and failed applies approved again. Real spec repository, moto and the binary.

use std::time::Duration;

use serde_json::{json, Value};
use tierdeck_tests::aws::{query, Fault, FaultProxy};
use tierdeck_tests::git::{Author, SpecRepo, SEJIN, SEUNG};
use tierdeck_tests::{error_of, wait_for, Api, Moto, TestApp};

const ANN: Author = ("Ann", "ann@example.com");

async fn approve(api: &Api, id: i64) -> reqwest::Response {
    api.post_json(&format!("/api/v1/changes/{id}/approve"), json!({}))
        .await
}

/// An operator's apply, as an emergency so that prod's business hours do not matter.
async fn emergency_apply(api: &Api, id: i64) -> reqwest::Response {
    api.post_json(
        &format!("/api/v1/changes/{id}/apply"),
        json!({ "emergency": true, "reason": "tested at any hour" }),
    )
    .await
}

async fn until_done(api: &Api, id: i64) -> Value {
    wait_for("the apply to end", 90, || async {
        let d = api.get_json(&format!("/api/v1/changes/{id}")).await;
        (d["status"] != "applying" && d["apply"]["status"] != "applying").then_some(d)
    })
    .await
}

/// Reviewers and an operator; none of them wrote the seeded commit (Sejin did).
struct Team {
    ann: Api,
    bo: Api,
    olga: Api,
}

impl Team {
    async fn of(app: &TestApp) -> Team {
        Team {
            ann: app.api_as("ann", "approver").await,
            bo: app.api_as("bo", "approver").await,
            olga: app.api_as("olga", "operator").await,
        }
    }

    /// Plans, approves twice and applies the change of `commit` to prod; returns its id.
    async fn apply_prod(&self, commit: &str) -> i64 {
        let id = self.ann.change_for("prod", commit).await["id"]
            .as_i64()
            .unwrap();
        self.ann.planned(id).await;
        assert_eq!(approve(&self.ann, id).await.status(), 200);
        assert_eq!(approve(&self.bo, id).await.status(), 200);
        assert_eq!(emergency_apply(&self.olga, id).await.status(), 202);
        let d = until_done(&self.olga, id).await;
        assert_eq!(d["status"], "applied", "{d:#}");
        id
    }
}

/// Prod's environment.yaml loosened: no approvals, auto-apply, no windows, no HA floor.
fn loosen_prod(work: &std::path::Path) {
    let p = work.join("environments/prod/environment.yaml");
    let text = std::fs::read_to_string(&p).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.contains("change_windows") && !l.contains("days: ["))
        .map(|l| {
            let l = l
                .replace("required: 2", "required: 0")
                .replace("auto_apply: false", "auto_apply: true")
                .replace("min_instances: 2", "min_instances: 0");
            format!("{l}\n")
        })
        .collect();
    std::fs::write(&p, text).unwrap();
}

#[tokio::test]
async fn a_commit_that_loosens_prods_rules_is_judged_by_the_applied_ones_and_loosens_only_the_next_change(
) {
    let moto = Moto::sandboxed().await;
    let repo = SpecRepo::petclinic();
    // Notifications go to a closed port: the delivery log keeps what they said.
    let hook = format!(
        "http://127.0.0.1:{}/hook",
        tierdeck_tests::free_port().unwrap()
    );
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&moto.url),
        &[("TIERDECK_NOTIFICATIONS__WEBHOOK_URL", &hook)],
    )
    .await;
    let team = Team::of(&app).await;
    team.apply_prod(&repo.head()).await;

    // The whole weakening at once, groups at min 0 included: blocked by the applied
    // guardrail, and nobody applies it.
    let group_mins = |from: &'static str, to: &'static str| {
        move |work: &std::path::Path| {
            let p = work.join("environments/prod/autoscaling.yaml");
            let text = std::fs::read_to_string(&p).unwrap();
            std::fs::write(&p, text.replace(from, to)).unwrap();
        }
    };
    let all_at_once = repo.commit(SEUNG, "Prod: move faster", |work| {
        loosen_prod(work);
        group_mins("    min: 2\n", "    min: 0\n")(work);
    });
    assert_eq!(team.olga.post("/api/v1/sync").await.status(), 200);
    let c = team.ann.change_for("prod", &all_at_once).await;
    assert_eq!(c["status"], "blocked", "{c:#}");
    let blocked = c["id"].as_i64().unwrap();
    let d = team
        .ann
        .get_json(&format!("/api/v1/changes/{blocked}"))
        .await;
    assert!(
        d["guardrails"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["rule"] == "min-instances"),
        "{d:#}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(team.ann.status_of(blocked).await, "blocked");
    let (code, _) = error_of(emergency_apply(&team.olga, blocked).await).await;
    assert_eq!(code, 409);

    // The groups back at 2: the rules alone are loosened, a policy change.
    let weaker = repo.commit(
        SEUNG,
        "Prod: groups back at 2",
        group_mins("    min: 0\n", "    min: 2\n"),
    );
    assert_eq!(team.olga.post("/api/v1/sync").await.status(), 200);
    assert_eq!(team.ann.status_of(blocked).await, "superseded");
    let c = team.ann.change_for("prod", &weaker).await;
    let id = c["id"].as_i64().unwrap();
    assert_eq!(c["status"], "pending");
    let edits: Vec<&str> = c["policy_edits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    for key in [
        "environment.approvals.required",
        "environment.auto_apply",
        "environment.change_windows",
        "environment.guardrails.min_instances",
    ] {
        assert!(edits.contains(&key), "{key}: {edits:?}");
    }
    let d = team.ann.planned(id).await;
    let policy = &d["policy"];
    assert_eq!(policy["required_approvals"], 2, "{policy:#}");
    assert_eq!(policy["auto_apply"], false);
    assert_eq!(policy["guardrails"]["min_instances"], 2);
    assert_eq!(policy["windows"].as_array().unwrap().len(), 1);
    assert_eq!(d["approvals"]["required"], 2);
    let page = app.login_new("pat", "viewer").await;
    let html = page
        .get(&format!("/changes/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("policy change") && html.contains("Rules that judge this change"),
        "the page labels it"
    );

    let admin = app.api_as("adam", "admin").await;
    let log = admin.get_json("/api/v1/notifications").await;
    let needed = log
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["change_id"] == id && d["event"] == "approval_needed")
        .unwrap_or_else(|| panic!("{log:#}"));
    assert!(
        needed["text"]
            .as_str()
            .unwrap()
            .starts_with("tierdeck: POLICY CHANGE: "),
        "{needed}"
    );

    // Nobody applies it without prod's two approvals: not tierdeck, not an operator.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(team.ann.status_of(id).await, "pending");
    let (code, message) = error_of(emergency_apply(&team.olga, id).await).await;
    assert_eq!(code, 409);
    assert!(
        message.contains("needs 2 approvals of its current plan; it has 0"),
        "{message}"
    );
    assert_eq!(approve(&team.ann, id).await.status(), 200);
    assert_eq!(approve(&team.bo, id).await.status(), 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        team.ann.status_of(id).await,
        "approved",
        "a policy change is never applied by itself"
    );
    let started = team
        .olga
        .get_json("/api/v1/audit?action=change.apply_started")
        .await;
    assert_eq!(started["events"].as_array().unwrap().len(), 1);
    assert_eq!(emergency_apply(&team.olga, id).await.status(), 202);
    let d = until_done(&team.olga, id).await;
    assert_eq!(d["status"], "applied");
    let started = team
        .olga
        .get_json("/api/v1/audit?action=change.apply_started&limit=1")
        .await;
    assert_eq!(started["events"][0]["detail"]["policy_change"], true);

    // The next change is judged by the new rules, under the panel's floor of one approval.
    let next = repo.raise_was_peak(SEUNG);
    assert_eq!(team.olga.post("/api/v1/sync").await.status(), 200);
    let c = team.ann.change_for("prod", &next).await;
    let next_id = c["id"].as_i64().unwrap();
    assert_eq!(c["policy_edits"], json!([]));
    let d = team.ann.planned(next_id).await;
    assert_eq!(d["policy"]["required_approvals"], 1, "{:#}", d["policy"]);
    assert_eq!(d["policy"]["auto_apply"], true);
    assert!(d["policy"]["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains("floor")));
    assert_eq!(d["actions"]["apply_needs_emergency"], false);
    assert_eq!(approve(&team.ann, next_id).await.status(), 200);
    // The system starts the apply after the approval: wait until it has run, not only until
    // nothing is applying.
    let d = wait_for("the automatic apply", 90, || async {
        let d = team
            .ann
            .get_json(&format!("/api/v1/changes/{next_id}"))
            .await;
        (d["status"] != "approved" && d["status"] != "applying").then_some(d)
    })
    .await;
    assert_eq!(d["status"], "applied", "{d:#}");
    assert_eq!(d["apply"]["started_by"], "system");
}

#[tokio::test]
async fn lowering_the_guardrail_and_a_groups_min_in_one_commit_is_blocked_by_the_applied_guardrail()
{
    let moto = Moto::sandboxed().await;
    let repo = SpecRepo::petclinic_any_time();
    let app = TestApp::watching(&repo.url(), 3600, Some(&moto.url)).await;
    let team = Team::of(&app).await;
    team.apply_prod(&repo.head()).await;

    let commit = repo.commit(SEUNG, "Prod web: one is enough", |work| {
        let env = work.join("environments/prod/environment.yaml");
        let text = std::fs::read_to_string(&env).unwrap();
        std::fs::write(&env, text.replace("min_instances: 2", "min_instances: 1")).unwrap();
        let groups = work.join("environments/prod/autoscaling.yaml");
        let text = std::fs::read_to_string(&groups).unwrap();
        std::fs::write(&groups, text.replacen("    min: 2\n", "    min: 1\n", 1)).unwrap();
    });
    assert_eq!(team.olga.post("/api/v1/sync").await.status(), 200);
    let c = team.ann.change_for("prod", &commit).await;
    assert_eq!(c["status"], "blocked");
    assert_eq!(
        c["policy_edits"],
        json!(["environment.guardrails.min_instances"])
    );
    let id = c["id"].as_i64().unwrap();
    let d = team.ann.get_json(&format!("/api/v1/changes/{id}")).await;
    let v = &d["guardrails"][0];
    assert_eq!(v["rule"], "min-instances");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("min 1 is below the guardrail min_instances 2"),
        "{v}"
    );
    assert_eq!(error_of(approve(&team.bo, id).await).await.0, 409);
    let (code, message) = error_of(emergency_apply(&team.olga, id).await).await;
    assert_eq!(code, 409);
    assert!(message.contains("blocked by guardrails"), "{message}");
}

#[tokio::test]
async fn everyone_who_wrote_or_committed_since_the_last_apply_is_an_author() {
    let moto = Moto::sandboxed().await;
    let repo = SpecRepo::petclinic_any_time();
    let app = TestApp::watching(&repo.url(), 3600, Some(&moto.url)).await;
    let team = Team::of(&app).await;
    team.apply_prod(&repo.head()).await;
    let cy = app.api_as("cy", "approver").await;
    let sejin = app.api_with_email("sejin", "approver", SEJIN.1).await;

    // Ann makes a commit that is not applied; then Cy commits the next one with Seung named as
    // its author.
    repo.commit(ANN, "Prod: was peak 8", |work| {
        let p = work.join("environments/prod/autoscaling.yaml");
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(
            &p,
            text.replacen(
                "timezone: Asia/Seoul, min: 5, max: 7 }",
                "timezone: Asia/Seoul, min: 5, max: 8 }",
                1,
            ),
        )
        .unwrap();
    });
    let last = repo.commit_as(
        ("Cy", "cy@example.com"),
        SEUNG,
        "Prod: was peak 8, night 3",
        |work| {
            let p = work.join("environments/prod/autoscaling.yaml");
            let text = std::fs::read_to_string(&p).unwrap();
            std::fs::write(&p, text.replacen("min: 2, max: 3 }", "min: 2, max: 4 }", 1)).unwrap();
        },
    );
    assert_eq!(team.olga.post("/api/v1/sync").await.status(), 200);
    let id = team.ann.change_for("prod", &last).await["id"]
        .as_i64()
        .unwrap();
    let d = team.ann.planned(id).await;
    let authors: Vec<&str> = d["authors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        authors,
        ["ann@example.com", "cy@example.com", SEUNG.1],
        "{d:#}"
    );
    for (who, api) in [("ann", &team.ann), ("cy", &cy)] {
        let (code, message) = error_of(approve(api, id).await).await;
        assert_eq!(code, 403, "{who}");
        assert!(
            message.contains("You wrote this change"),
            "{who}: {message}"
        );
    }
    let d = team.ann.get_json(&format!("/api/v1/changes/{id}")).await;
    assert_eq!(d["actions"]["approve"]["state"], "denied");
    // Sejin's commit was applied: that no longer makes Sejin an author.
    assert_eq!(approve(&sejin, id).await.status(), 200);
    assert_eq!(approve(&team.bo, id).await.status(), 200);
    assert_eq!(team.ann.status_of(id).await, "approved");
}

#[tokio::test]
async fn an_approver_without_an_e_mail_is_refused_with_the_reason() {
    let moto = Moto::sandboxed().await;
    let repo = SpecRepo::petclinic_any_time();
    let app = TestApp::watching(&repo.url(), 3600, Some(&moto.url)).await;
    app.add_user_as("nomail", "approver", None).await;
    let nomail = app.api_for("nomail").await;
    let id = nomail.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    let d = nomail.planned(id).await;
    assert_eq!(d["actions"]["approve"]["state"], "denied");
    let why = d["actions"]["approve"]["reason"].as_str().unwrap();
    assert!(why.contains("no e-mail address"), "{why}");
    let (code, message) = error_of(approve(&nomail, id).await).await;
    assert_eq!(code, 403);
    assert_eq!(message, why);
    let page = app.login("nomail").await;
    let html = page
        .get(&format!("/changes/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("no e-mail address"), "the page says why");
}

#[tokio::test]
async fn a_plan_that_moves_after_two_approvals_voids_them_and_two_new_ones_let_it_apply() {
    let moto = Moto::sandboxed().await;
    let repo = SpecRepo::petclinic_any_time();
    let app = TestApp::watching(&repo.url(), 3600, Some(&moto.url)).await;
    let team = Team::of(&app).await;
    let id = team.ann.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    let before = team.ann.planned(id).await;
    assert_eq!(approve(&team.ann, id).await.status(), 200);
    assert_eq!(approve(&team.bo, id).await.status(), 200);
    assert_eq!(team.ann.status_of(id).await, "approved");

    // AWS moves; "Plan again" sees it.
    query(
        &moto.url,
        "autoscaling",
        "UpdateAutoScalingGroup",
        &[
            ("AutoScalingGroupName", "petclinic-prod-was"),
            ("MaxSize", "5"),
        ],
    )
    .await;
    let res = team.ann.post(&format!("/api/v1/changes/{id}/plan")).await;
    assert_eq!(res.status(), 200);
    let d = team.ann.get_json(&format!("/api/v1/changes/{id}")).await;
    assert_ne!(d["plan"]["hash"], before["plan"]["hash"], "the plan moved");
    assert_eq!(d["status"], "pending");
    assert_eq!(d["approvals"]["counted"], 0);
    assert_eq!(d["actions"]["approve"]["state"], "allowed");
    let voided = team
        .ann
        .get_json("/api/v1/audit?action=change.approvals_voided")
        .await;
    let e = &voided["events"][0];
    assert_eq!(e["detail"]["voided"], 2);
    assert_eq!(e["detail"]["from"], "approved");
    assert_eq!(e["detail"]["status"], "pending");

    assert_eq!(approve(&team.ann, id).await.status(), 200);
    assert_eq!(approve(&team.bo, id).await.status(), 200);
    assert_eq!(team.ann.status_of(id).await, "approved");
    assert_eq!(emergency_apply(&team.olga, id).await.status(), 202);
    assert_eq!(until_done(&team.olga, id).await["status"], "applied");
}

#[tokio::test]
async fn a_failed_apply_is_approved_again_for_what_is_left_and_converges() {
    let moto = Moto::sandboxed().await;
    let proxy = FaultProxy::start(&moto.url).await;
    let repo = SpecRepo::petclinic_any_time();
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&proxy.url),
        &[("TIERDECK_AWS__MAX_ATTEMPTS", "1")],
    )
    .await;
    let team = Team::of(&app).await;
    let id = team.ann.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    team.ann.planned(id).await;
    assert_eq!(approve(&team.ann, id).await.status(), 200);
    assert_eq!(approve(&team.bo, id).await.status(), 200);

    proxy.fail("PutScheduledUpdateGroupAction", Fault::ServerError, None);
    assert_eq!(emergency_apply(&team.olga, id).await.status(), 202);
    let d = until_done(&team.olga, id).await;
    assert_eq!(d["status"], "failed", "{d:#}");
    proxy.heal();

    // What is left is a new plan: the old approvals are void and it is approvable again.
    let res = team.ann.post(&format!("/api/v1/changes/{id}/plan")).await;
    assert_eq!(res.status(), 200);
    let d = team.ann.get_json(&format!("/api/v1/changes/{id}")).await;
    assert_eq!(d["status"], "pending", "{d:#}");
    assert_eq!(d["approvals"]["counted"], 0);
    let left = d["plan"]["operations"].as_array().unwrap().len();
    assert!(left > 0, "something is left");
    let (code, message) = error_of(emergency_apply(&team.olga, id).await).await;
    assert_eq!(code, 409, "{message}");
    assert_eq!(approve(&team.ann, id).await.status(), 200);
    assert_eq!(approve(&team.bo, id).await.status(), 200);
    assert_eq!(emergency_apply(&team.olga, id).await.status(), 202);
    let d = until_done(&team.olga, id).await;
    assert_eq!(d["status"], "applied", "{d:#}");
    assert_eq!(d["runs"], 2);
    let env = team.ann.get_json("/api/v1/environments/prod").await;
    assert_eq!(env["last_applied_commit"], repo.head());
}
