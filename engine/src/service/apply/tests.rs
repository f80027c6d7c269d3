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
