//! The schedule preview on the environment and on a change that edits schedules.

use serde_json::Value;
use tierdeck_tests::git::{SpecRepo, SEUNG};
use tierdeck_tests::TestApp;

fn steps_of<'a>(preview: &'a Value, group: &str) -> &'a Vec<Value> {
    preview["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == group)
        .unwrap_or_else(|| panic!("no {group} in {preview:#}"))["steps"]
        .as_array()
        .unwrap()
}

#[tokio::test]
async fn the_environment_previews_its_schedules_and_a_change_shows_before_and_after() {
    let repo = SpecRepo::petclinic();
    let app = TestApp::watching(&repo.url(), 3600, None).await;
    let api = app.api_as("vic", "viewer").await;
    api.change_for("prod", &repo.head()).await;

    let env = api.get_json("/api/v1/environments/prod").await;
    let day = &env["schedule"];
    assert_eq!(day["hours"], 24);
    // Each group has five actions a day, as in the team's table.
    for g in ["petclinic-prod-web", "petclinic-prod-was"] {
        assert_eq!(steps_of(day, g).len(), 5, "{g}");
    }
    let week = api.get_json("/api/v1/environments/prod?hours=168").await;
    assert_eq!(steps_of(&week["schedule"], "petclinic-prod-web").len(), 35);

    let page = app.login_new("sam", "viewer").await;
    let html = tierdeck_tests::without_markers(
        &page.get("/environments/prod").await.text().await.unwrap(),
    );
    assert!(html.contains("Schedule preview"), "{html}");
    assert!(html.contains("18:50 Asia/Seoul"), "{html}");
    assert!(html.contains("3–5 (5)"), "the was pre-scale: {html}");
    assert!(html.contains("<svg"), "a chart drawn on the server");

    // A change that raises the was evening peak shows the day before and after.
    let commit = repo.raise_was_peak(SEUNG);
    let ops = app.api_as("olga", "operator").await;
    assert_eq!(ops.post("/api/v1/sync").await.status(), 200);
    let c = api.change_for("prod", &commit).await;
    let d = api.get_json(&format!("/api/v1/changes/{}", c["id"])).await;
    let peak = |p: &Value| {
        steps_of(p, "petclinic-prod-was")
            .iter()
            .find(|s| s["action"] == "was-peak")
            .unwrap()["capacity"]["max"]
            .clone()
    };
    // Never applied: no "before"; the "after" has the new peak.
    assert_eq!(d["schedule"]["before"], Value::Null);
    assert_eq!(peak(&d["schedule"]["after"]), 8);
}
