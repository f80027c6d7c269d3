//! Applying, against the in-memory AWS: an apply runs as a job and leaves AWS as the spec
//! says; steps that start slow work settle before the next; an apply whose process stopped is
//! interrupted, never run again.

use domain::change::{ChangeId, ChangeStatus, Drift, SettleState, Settling};
use domain::job::Outcome;

use crate::auth::{Caller, RequestMeta};
use crate::jobs::Job;
use crate::store::{applies, jobs as job_store};
use crate::testing::{TestEngine, SHOP};

/// Records, plans and applies the shop's head as `system`; returns its change.
async fn apply_head(t: &TestEngine) -> ChangeId {
    let out = t.sync().await;
    let id = *out.changes.last().expect("a change was recorded");
    t.drain().await;
    let run = t
        .engine
        .applies()
        .apply_change(&Caller::System, &RequestMeta::default(), id, None)
        .await
        .expect("the apply starts");
    assert!(run > 0);
    t.drain().await;
    id
}

#[tokio::test]
async fn an_apply_runs_as_a_job_and_aws_then_matches_the_spec() {
    let t = TestEngine::new(SHOP).await;
    let id = apply_head(&t).await;

    let change = t.change(id).await;
    assert_eq!(change.status, ChangeStatus::Applied);
    {
        let s = t.aws.state();
        let web = &s.groups["shop-web"];
        assert_eq!((web.min, web.max, web.desired), (2, 4, 2));
        assert_eq!(web.policies.len(), 2, "a scale-out and a scale-in policy");
        assert_eq!(s.alarms.len(), 2, "one alarm for each");
        assert!(web.scheduled.contains_key("web-night"));
        let db = &s.databases["shop-db"];
        assert_eq!(db.instance_class, "db.t3.small");
        assert_eq!(db.backup_retention_days, 7);
        assert!(db.deletion_protection);
        assert_eq!(s.security_groups["shop-alb-sg"].ingress.len(), 1);
        assert_eq!(s.security_groups["shop-web-sg"].ingress.len(), 1);
    }
    // The applied spec planned again against AWS: nothing is left to do.
    let drift = t.engine.drift().check_drift("shop").await.unwrap();
    assert!(matches!(drift, Drift::InSync { .. }), "{drift:?}");
    // The work ran as jobs: the plan, the apply, what follows it; the watch waits its time.
    let jobs = t.jobs_of(id).await;
    for (kind, state) in [("plan", "done"), ("apply", "done"), ("watch", "queued")] {
        assert!(
            jobs.iter().any(|(k, s)| k == kind && s == state),
            "{kind} {state}: {jobs:?}"
        );
    }
    let actions = t.audit_actions().await;
    for a in [
        "change.detected",
        "change.apply_started",
        "aws.call",
        "change.applied",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a}: {actions:?}");
    }
}

#[tokio::test]
async fn raised_capacity_and_a_modified_database_settle_before_the_next_step() {
    let t = TestEngine::new(SHOP).await;
    apply_head(&t).await;
    {
        let mut s = t.aws.state();
        s.launch_polls = 2;
        s.modify_polls = 2;
    }
    t.edit(
        "environments/shop/environment.yaml",
        "  auto_apply: false\n",
        "  auto_apply: false\n  wait_for_capacity: true\n",
        "Wait for capacity",
    );
    t.edit(
        "environments/shop/autoscaling.yaml",
        "    min: 2\n    max: 4\n    desired: 2\n",
        "    min: 3\n    max: 4\n    desired: 3\n",
        "Three web servers",
    );
    let sha = t.edit(
        "environments/shop/database.yaml",
        "db.t3.small",
        "db.t3.medium",
        "A larger database",
    );
    let id = apply_head(&t).await;
    assert_eq!(id, t.change_for("shop", &sha).await);
    assert_eq!(t.change(id).await.status, ChangeStatus::Applied);

    let mut conn = t.engine.store.pool().acquire().await.unwrap();
    let run = applies::latest_run(&mut conn, id.0).await.unwrap().unwrap();
    let settled: Vec<Settling> = applies::steps(&mut conn, run.id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|s| s.settling)
        .map(|s| serde_json::from_str(&s).unwrap())
        .collect();
    // The database's, and the capacity's (min and desired each raise it).
    assert!(settled.len() >= 2, "{settled:?}");
    for s in &settled {
        assert_eq!(s.state, SettleState::Settled, "{s:?}");
    }
    // The first step on each waited while AWS worked (a later capacity step finds the
    // instances the first one waited for).
    for resource in ["shop-db", "shop-web"] {
        let polls = settled
            .iter()
            .filter(|s| s.waiting_for.contains(resource))
            .map(|s| s.polls)
            .max();
        assert!(polls >= Some(2), "{resource}: {settled:?}");
    }
    let s = t.aws.state();
    assert_eq!(s.groups["shop-web"].in_service, 3);
    assert_eq!(s.databases["shop-db"].instance_class, "db.t3.medium");
    assert_eq!(s.databases["shop-db"].status, "available");
}

/// The apply job change `id`'s apply queued, as the worker would take it.
async fn apply_job(t: &TestEngine, id: ChangeId) -> Box<super::RunJob> {
    let row = {
        let mut conn = t.engine.store.pool().acquire().await.unwrap();
        job_store::of_change(&mut conn, id.0)
            .await
            .unwrap()
            .into_iter()
            .find(|j| j.kind == "apply")
            .unwrap()
    };
    let Job::Apply(run) = Job::from_row(&row).unwrap() else {
        panic!("an apply job");
    };
    run
}

#[tokio::test]
async fn an_apply_whose_process_stopped_is_interrupted_and_never_run_again() {
    let t = TestEngine::new(SHOP).await;
    let id = *t.sync().await.changes.last().unwrap();
    t.drain().await;
    t.engine
        .applies()
        .apply_change(&Caller::System, &RequestMeta::default(), id, None)
        .await
        .unwrap();
    // The process that took the apply job died before its first step: the job is taken again.
    let run = apply_job(&t, id).await;
    let outcome = t.engine.applies().run_job(*run, 2).await;
    assert!(
        matches!(&outcome, Outcome::Final(why) if why.contains("interrupted")),
        "{outcome:?}"
    );
    assert_eq!(t.change(id).await.status, ChangeStatus::Interrupted);
    assert_eq!(t.aws.calls("UpdateAutoScalingGroup"), 0, "no step ran");
    let mut conn = t.engine.store.pool().acquire().await.unwrap();
    assert!(applies::lock(&mut conn, "shop").await.unwrap().is_none());
    assert!(t
        .audit_actions()
        .await
        .contains(&"change.interrupted".to_owned()));
}

#[tokio::test]
async fn a_throttled_call_is_tried_again_and_every_try_is_audited() {
    let t = TestEngine::new(SHOP).await;
    t.aws.throttle("UpdateAutoScalingGroup", Some(2));
    let id = apply_head(&t).await;
    assert_eq!(t.change(id).await.status, ChangeStatus::Applied);
    let calls: Vec<String> = t
        .audit_actions()
        .await
        .into_iter()
        .filter(|a| a == "aws.call")
        .collect();
    let mut conn = t.engine.store.pool().acquire().await.unwrap();
    let run = applies::latest_run(&mut conn, id.0).await.unwrap().unwrap();
    let steps = applies::steps(&mut conn, run.id).await.unwrap();
    assert_eq!(
        calls.len() as i64,
        steps.iter().map(|s| s.attempts).sum::<i64>(),
        "one audit event per try"
    );
    assert!(
        steps.iter().any(|s| s.attempts == 3),
        "two throttles, then the call"
    );
}

/// The shop's web group rolled to a new image in two stages (50 %, 100 %), baked `bake`
/// seconds at the first; returns the commit.
fn roll_new_image(t: &TestEngine, bake: u32) -> String {
    t.edit(
        "environments/shop/autoscaling.yaml",
        "    desired: 2\n",
        &format!("    desired: 2\n    image_id: ami-0abcdef1234567890\n    rollout:\n      checkpoints: [50, 100]\n      bake_seconds: {bake}\n      min_healthy_percent: 90\n"),
        "A new web image",
    )
}

/// The rollout state recorded on the latest run's rollout step.
async fn rollout_of(t: &TestEngine, id: ChangeId) -> Option<domain::rollout::RolloutState> {
    let mut conn = t.engine.store.pool().acquire().await.unwrap();
    let run = applies::latest_run(&mut conn, id.0).await.unwrap()?;
    applies::steps(&mut conn, run.id)
        .await
        .unwrap()
        .into_iter()
        .find_map(|s| s.rollout)
        .map(|s| serde_json::from_str(&s).unwrap())
}

/// The versions the web group's instances run.
fn web_versions(t: &TestEngine) -> Vec<String> {
    t.aws.state().groups["shop-web"]
        .instances
        .iter()
        .map(|(_, v)| v.clone())
        .collect()
}

#[tokio::test]
async fn a_new_image_rolls_out_stage_by_stage_and_every_instance_then_runs_it() {
    let t = TestEngine::new(SHOP).await;
    apply_head(&t).await;
    roll_new_image(&t, 0);
    let id = apply_head(&t).await;
    assert_eq!(t.change(id).await.status, ChangeStatus::Applied);
    let st = rollout_of(&t, id)
        .await
        .expect("the step records its rollout");
    assert_eq!(st.phase, domain::rollout::Phase::Succeeded);
    assert_eq!(
        st.version.as_deref(),
        Some("2"),
        "a new version of the template"
    );
    // One refresh per stage; the first cancelled at its checkpoint once baked.
    assert_eq!(t.aws.calls("CreateLaunchTemplateVersion"), 1);
    assert_eq!(t.aws.calls("StartInstanceRefresh"), 2);
    assert_eq!(t.aws.calls("CancelInstanceRefresh"), 1);
    assert!(
        web_versions(&t).iter().all(|v| v == "2"),
        "{:?}",
        web_versions(&t)
    );
    assert_eq!(
        t.aws.state().groups["shop-web"]
            .template
            .as_ref()
            .unwrap()
            .1,
        "2",
        "the group is pinned to the new version"
    );
    let drift = t.engine.drift().check_drift("shop").await.unwrap();
    assert!(matches!(drift, Drift::InSync { .. }), "{drift:?}");
    let actions = t.audit_actions().await;
    for a in [
        "rollout.stage_started",
        "rollout.stage_good",
        "rollout.ended",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a}: {actions:?}");
    }
}

#[tokio::test]
async fn a_page_alert_during_a_bake_rolls_the_refresh_back_and_degrades_the_change() {
    let t = TestEngine::with_settings(SHOP, |s| {
        s.apply.watch_interval = std::time::Duration::from_millis(50);
    })
    .await;
    apply_head(&t).await;
    roll_new_image(&t, 3600);
    // The errors start once the new servers take traffic (the bake never ends by itself on
    // the test's clock).
    let prom = t.prom.clone();
    let aws = t.aws.clone();
    let spike = tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let new = aws.state().groups["shop-web"]
                .instances
                .iter()
                .any(|(_, v)| v == "2");
            if new {
                prom.answer(0.5);
                return;
            }
        }
    });
    let id = apply_head(&t).await;
    spike.await.unwrap();
    let change = t.change(id).await;
    assert_eq!(change.status, ChangeStatus::Degraded);
    let st = rollout_of(&t, id).await.unwrap();
    assert_eq!(st.phase, domain::rollout::Phase::RolledBack, "{st:?}");
    assert!(
        st.alert.as_deref().unwrap().starts_with("availability"),
        "{st:?}"
    );
    assert!(st.burn.unwrap() > 14.0, "{st:?}");
    assert_eq!(t.aws.calls("RollbackInstanceRefresh"), 1);
    assert!(
        web_versions(&t).iter().all(|v| v == "1"),
        "{:?}",
        web_versions(&t)
    );
    let actions = t.audit_actions().await;
    assert!(
        actions.contains(&"change.degraded".to_owned()),
        "{actions:?}"
    );
}

#[tokio::test]
async fn a_rollout_cut_short_re_attaches_to_its_refresh_by_id_instead_of_starting_another() {
    let t = TestEngine::new(SHOP).await;
    apply_head(&t).await;
    roll_new_image(&t, 600);
    let id = *t.sync().await.changes.last().unwrap();
    t.drain().await;
    t.engine
        .applies()
        .apply_change(&Caller::System, &RequestMeta::default(), id, None)
        .await
        .unwrap();
    let run = apply_job(&t, id).await;
    // The first process follows the rollout into its bake and stops there.
    let engine = t.engine.clone();
    let first = (*run).clone();
    let running = tokio::spawn(async move { engine.applies().run_job(first, 1).await });
    for _ in 0..200 {
        if rollout_of(&t, id)
            .await
            .is_some_and(|s| s.phase == domain::rollout::Phase::Baking)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    running.abort();
    let before = rollout_of(&t, id).await.unwrap();
    assert_eq!(before.phase, domain::rollout::Phase::Baking);
    assert_eq!(t.aws.calls("StartInstanceRefresh"), 1);
    // The bake's time passes while no process follows it; the job's next try re-attaches.
    t.advance(chrono::Duration::minutes(11));
    let outcome = t.engine.applies().run_job(*run, 2).await;
    assert!(matches!(outcome, Outcome::Done), "{outcome:?}");
    assert_eq!(t.change(id).await.status, ChangeStatus::Applied);
    let after = rollout_of(&t, id).await.unwrap();
    assert_eq!(after.phase, domain::rollout::Phase::Succeeded);
    // The first stage's refresh was followed to its end by id; only the second was started.
    assert_eq!(t.aws.calls("StartInstanceRefresh"), 2);
    assert!(web_versions(&t).iter().all(|v| v == "2"));
    assert!(t
        .audit_actions()
        .await
        .contains(&"rollout.reattached".to_owned()));
}
