//! Many readers at once while an apply runs: the pages answer, none with an error, and the
//! apply completes. Prints p50 and p99 of each page (a measurement, not a test of speed).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tierdeck_tests::aws::{Fault, FaultProxy};
use tierdeck_tests::git::SpecRepo;
use tierdeck_tests::{wait_for, Moto, TestApp, NO_APPROVAL_FLOOR};

const READERS: usize = 200;
const SESSIONS: usize = 20;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_readers_while_an_apply_runs_get_no_error_and_the_apply_completes() {
    let moto = Moto::sandboxed().await;
    let proxy = FaultProxy::start(&moto.url).await;
    let repo = SpecRepo::petclinic_ungated();
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&proxy.url),
        &[NO_APPROVAL_FLOOR, ("TIERDECK_AWS__MAX_ATTEMPTS", "6")],
    )
    .await;
    let op = app.api_as("olga", "operator").await;
    let id = op.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    op.planned(id).await;
    let mut sessions = Vec::new();
    for i in 0..SESSIONS {
        sessions.push(Arc::new(
            app.login_new(&format!("reader{i}"), "viewer").await,
        ));
    }
    // Throttled answers stretch the apply over a few seconds of retries.
    proxy.fail("PutScheduledUpdateGroupAction", Fault::Throttle, Some(4));
    let res = op.post(&format!("/api/v1/changes/{id}/apply")).await;
    assert_eq!(res.status(), 202);

    let done = Arc::new(AtomicBool::new(false));
    let pages = [
        format!("/changes/{id}"),
        "/".to_owned(),
        "/audit".to_owned(),
    ];
    let mut readers = Vec::new();
    for r in 0..READERS {
        let client = sessions[r % SESSIONS].clone();
        let (done, pages) = (done.clone(), pages.clone());
        readers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for round in 0..3 {
                if round >= 2 && done.load(Ordering::SeqCst) {
                    break;
                }
                for (p, path) in pages.iter().enumerate() {
                    let started = Instant::now();
                    // The whole page, as a browser reads it.
                    let res = client.get(path).await;
                    let status = res.status().as_u16();
                    let read = res.bytes().await.is_ok();
                    let status = if read { status } else { 0 };
                    seen.push((p, status, started.elapsed()));
                }
            }
            seen
        }));
    }
    let applied = wait_for("the apply under load", 120, || async {
        let d = op.get_json(&format!("/api/v1/changes/{id}")).await;
        let s = d["status"].as_str().unwrap_or_default().to_owned();
        (s != "applying").then_some(s)
    })
    .await;
    done.store(true, Ordering::SeqCst);
    let mut all = Vec::new();
    for r in readers {
        all.extend(r.await.unwrap());
    }
    assert_eq!(applied, "applied");
    let errors: Vec<_> = all.iter().filter(|(_, s, _)| *s != 200).collect();
    assert!(
        errors.is_empty(),
        "{} of {} answers were not 200: {:?}",
        errors.len(),
        all.len(),
        &errors[..errors.len().min(10)]
    );
    for (p, path) in ["change page", "overview", "audit page"].iter().enumerate() {
        let mut times: Vec<Duration> = all
            .iter()
            .filter(|(q, ..)| *q == p)
            .map(|(.., t)| *t)
            .collect();
        times.sort();
        eprintln!(
            "load: {path}: {} requests, p50 {:.0} ms, p99 {:.0} ms",
            times.len(),
            percentile(&times, 0.5).as_secs_f64() * 1000.0,
            percentile(&times, 0.99).as_secs_f64() * 1000.0
        );
    }
}
