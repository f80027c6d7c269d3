//! Measurements of the spec repository watcher (not run by the test suite):
//!
//! `cargo bench -p tierdeck-tests --bench repo` after `cargo xtask build`.
//!
//! 1. push → change visible through the webhook, p50/p95 over 50 pushes;
//! 2. push → change visible through polling (1 s interval), over 10 pushes;
//! 3. time to pick up one new commit on a synthetic repository of 50 environments with 100 and
//!    with 10,000 commits.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tierdeck_tests::git::{SpecRepo, SEUNG};
use tierdeck_tests::{wait_for, TestApp};

const SECRET: &str = tierdeck_tests::WEBHOOK_SECRET;

/// Milliseconds of the day from a stored `YYYY-MM-DDTHH:MM:SS.mmmZ` time (same-day differences only).
fn chrono_millis(t: &str) -> i64 {
    let time = &t[11..23];
    let (h, rest) = time.split_at(2);
    let (m, rest) = rest[1..].split_at(2);
    let (sec, ms) = rest[1..].split_at(2);
    ((h.parse::<i64>().unwrap() * 60 + m.parse::<i64>().unwrap()) * 60
        + sec.parse::<i64>().unwrap())
        * 1000
        + ms[1..].parse::<i64>().unwrap()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(what: &str, mut ms: Vec<f64>) {
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{what}: n={} p50={:.1} ms p95={:.1} ms max={:.1} ms",
        ms.len(),
        percentile(&ms, 0.5),
        percentile(&ms, 0.95),
        ms[ms.len() - 1]
    );
}

fn signature(body: &[u8]) -> String {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", SECRET, "-r"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    format!(
        "sha256={}",
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
    )
}

async fn app_for(url: &str, poll: u64) -> TestApp {
    TestApp::watching(url, poll, None).await
}

async fn visible(api: &tierdeck_tests::Api, commit: &str) {
    wait_for("the change", 30, || async {
        api.changes("prod")
            .await
            .iter()
            .any(|c| c["commit"]["sha"] == commit)
            .then_some(())
    })
    .await;
}

async fn webhook_latency() {
    let repo = SpecRepo::petclinic();
    let app = app_for(&repo.url(), 3600).await;
    let api = app.api_as("ops", "operator").await;
    visible(&api, &repo.head()).await;
    let body = br#"{"ref":"refs/heads/main"}"#;
    let sig = signature(body);
    let http = reqwest::Client::new();
    let mut ms = Vec::new();
    let mut hook_ms = Vec::new();
    for i in 0..50 {
        let commit = repo.commit(SEUNG, &format!("storage {i}"), |w| {
            let p = w.join("environments/prod/database.yaml");
            let t = std::fs::read_to_string(&p).unwrap();
            let t = t
                .lines()
                .map(|l| {
                    if l.contains("allocated_storage_gb") {
                        format!("    allocated_storage_gb: {}", 20 + i + 1)
                    } else {
                        l.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
                + "\n";
            std::fs::write(p, t).unwrap();
        });
        let start = Instant::now();
        let res = http
            .post(format!("{}/api/v1/hooks/git", app.base))
            .header("X-Hub-Signature-256", &sig)
            .body(&body[..])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202);
        hook_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        visible(&api, &commit).await;
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    report("webhook POST answered (202)", hook_ms);
    report(
        "push → change visible via webhook (as the API client sees it)",
        ms,
    );
    // The server's own timestamps: webhook accepted → change recorded.
    let at = |v: &serde_json::Value| -> Vec<f64> {
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let t = chrono_millis(e["at"].as_str().unwrap());
                t as f64
            })
            .collect()
    };
    let accepted = at(&api
        .get_json("/api/v1/audit?action=webhook.accepted&limit=50")
        .await);
    let detected = at(&api
        .get_json("/api/v1/audit?action=change.detected&limit=50")
        .await);
    let server: Vec<f64> = accepted.iter().zip(&detected).map(|(a, d)| d - a).collect();
    report(
        "webhook accepted → change recorded (server timestamps, 1 ms resolution)",
        server,
    );
}

async fn polling_latency() {
    let repo = SpecRepo::petclinic();
    let app = app_for(&repo.url(), 1).await;
    let api = app.api_as("ops", "operator").await;
    visible(&api, &repo.head()).await;
    let mut ms = Vec::new();
    for i in 0..10 {
        let start = Instant::now();
        let commit = repo.commit(SEUNG, &format!("backups {i}"), |w| {
            let p = w.join("environments/prod/database.yaml");
            let t = std::fs::read_to_string(&p).unwrap();
            std::fs::write(
                p,
                t.replace(
                    &format!("backup_retention_days: {}", 7 + i),
                    &format!("backup_retention_days: {}", 8 + i),
                ),
            )
            .unwrap();
        });
        visible(&api, &commit).await;
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    report("push → change visible via polling (1 s interval)", ms);
}

/// A bare repository of `envs` environments and `commits` commits, each commit changing one
/// environment's max capacity, written with `git fast-import`.
fn synthetic(dir: &std::path::Path, envs: usize, commits: usize) -> std::path::PathBuf {
    let bare = dir.join(format!("synthetic-{commits}.git"));
    let ok = Command::new("git")
        .args(["init", "-q", "--bare", "--initial-branch=main"])
        .arg(&bare)
        .status()
        .unwrap();
    assert!(ok.success());
    let mut stream = Vec::new();
    let blob = |out: &mut Vec<u8>, path: &str, text: &str| {
        writeln!(out, "M 100644 inline {path}\ndata {}\n{text}", text.len()).unwrap();
    };
    let group = |env: usize, max: usize| {
        format!("autoscaling_groups:\n  - name: syn-{env}-web\n    tier: web\n    min: 2\n    max: {max}\n")
    };
    for c in 0..commits {
        let msg = format!("commit {c}");
        writeln!(stream, "commit refs/heads/main\nmark :{}", c + 1).unwrap();
        writeln!(
            stream,
            "author Bench <bench@example.com> {} +0000",
            1_700_000_000 + c
        )
        .unwrap();
        writeln!(
            stream,
            "committer Bench <bench@example.com> {} +0000",
            1_700_000_000 + c
        )
        .unwrap();
        writeln!(stream, "data {}\n{msg}", msg.len()).unwrap();
        if c == 0 {
            for e in 0..envs {
                blob(
                    &mut stream,
                    &format!("environments/env{e}/environment.yaml"),
                    &format!("environment:\n  name: env{e}\n"),
                );
                blob(
                    &mut stream,
                    &format!("environments/env{e}/autoscaling.yaml"),
                    &group(e, 8),
                );
            }
        } else {
            writeln!(stream, "from :{c}").unwrap();
            let e = c % envs;
            blob(
                &mut stream,
                &format!("environments/env{e}/autoscaling.yaml"),
                &group(e, 3 + c % 5),
            );
        }
        writeln!(stream).unwrap();
    }
    let mut child = Command::new("git")
        .current_dir(&bare)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&stream).unwrap();
    assert!(child.wait().unwrap().success());
    bare
}

fn add_commit(bare: &std::path::Path, n: usize) {
    let work = bare.with_extension("work");
    if !work.exists() {
        Command::new("git")
            .args(["clone", "-q"])
            .arg(bare)
            .arg(&work)
            .status()
            .unwrap();
    }
    let p = work.join("environments/env7/autoscaling.yaml");
    std::fs::write(
        &p,
        format!(
            "autoscaling_groups:\n  - name: syn-7-web\n    tier: web\n    min: 2\n    max: {}\n",
            2 + n % 6
        ),
    )
    .unwrap();
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .current_dir(&work)
            .args(args)
            .env("GIT_AUTHOR_NAME", "Bench")
            .env("GIT_AUTHOR_EMAIL", "bench@example.com")
            .env("GIT_COMMITTER_NAME", "Bench")
            .env("GIT_COMMITTER_EMAIL", "bench@example.com")
            .status()
            .unwrap();
        assert!(ok.success(), "git {args:?}");
    };
    git(&["commit", "-qam", &format!("one more {n}")]);
    git(&["push", "-q", "origin", "HEAD:main"]);
}

async fn pickup(commits: usize) {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let bare = synthetic(dir.path(), 50, commits);
    let built = started.elapsed();
    let app = app_for(bare.to_str().unwrap(), 3600).await;
    let api = app.api_as("ops", "operator").await;
    // The first sight (started at spawn) records 50 changes.
    let first = Instant::now();
    wait_for("the first import", 120, || async {
        let envs = api.get_json("/api/v1/environments").await;
        (envs.as_array().map_or(0, Vec::len) == 50).then_some(())
    })
    .await;
    let first_ms = first.elapsed().as_secs_f64() * 1000.0;
    let mut server_ms = Vec::new();
    let mut total_ms = Vec::new();
    for n in 0..10 {
        add_commit(&bare, n);
        let start = Instant::now();
        let res = api.post("/api/v1/sync").await;
        assert_eq!(res.status(), 200);
        let outcome: serde_json::Value = res.json().await.unwrap();
        assert_eq!(outcome["new_commits"], 1);
        assert_eq!(outcome["changes"].as_array().unwrap().len(), 1);
        total_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        server_ms.push(outcome["elapsed_ms"].as_f64().unwrap());
    }
    println!("synthetic repo, 50 environments, {commits} commits (built in {:.1} s); first sight ≤ {first_ms:.0} ms", built.as_secs_f64());
    report(
        &format!("  one new commit, sync inside tierdeck ({commits} commits)"),
        server_ms,
    );
    report(
        &format!("  one new commit, POST /api/v1/sync round trip ({commits} commits)"),
        total_ms,
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::main]
async fn main() {
    let only = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .unwrap_or_default();
    if only.is_empty() || only == "webhook" {
        webhook_latency().await;
    }
    if only.is_empty() || only == "polling" {
        polling_latency().await;
    }
    if only.is_empty() || only == "synthetic" {
        pickup(100).await;
        pickup(10_000).await;
    }
}
