//! Plan timings against the AWS emulator (not run by the test suite):
//!
//! `cargo bench -p tierdeck-tests --bench plan` after `cargo xtask build --release`.
//!
//! 1. `examples/petclinic` prod: 20 plans through `POST /api/v1/changes/{id}/plan`, with the
//!    time tierdeck spent reading the live state (its describe calls run concurrently), next to
//!    the same describe calls made one after another from here (their summed time);
//! 2. applying prod: the first full apply, then a one-field change;
//! 3. a synthetic environment of 200 groups.

use std::time::Instant;

use tierdeck_tests::aws::query;
use tierdeck_tests::git::{SpecRepo, SEJIN};
use tierdeck_tests::{wait_for, Api, Moto, TestApp};

fn report(what: &str, mut ms: Vec<f64>) {
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{what}: n={} p50={:.1} ms p95={:.1} ms",
        ms.len(),
        p(0.5),
        p(0.95)
    );
}

async fn plans(moto: &Moto, repo: &SpecRepo, env: &str, n: usize) {
    let app = TestApp::watching(&repo.url(), 3600, Some(&moto.url)).await;
    let api = app.api_as("vic", "viewer").await;
    let change = wait_for("the change", 60, || async {
        api.changes(env).await.into_iter().next()
    })
    .await;
    let path = format!("/api/v1/changes/{}/plan", change["id"]);
    let (mut total, mut read) = (Vec::new(), Vec::new());
    let mut ops = 0;
    for _ in 0..n {
        let start = Instant::now();
        let res = api.post(&path).await;
        assert_eq!(res.status(), 200);
        let v: serde_json::Value = res.json().await.unwrap();
        total.push(start.elapsed().as_secs_f64() * 1000.0);
        read.push(v["read_ms"].as_f64().unwrap());
        ops = v["plan"]["operations"].as_array().unwrap().len();
    }
    report(&format!("{env}: plan round trip ({ops} operations)"), total);
    report(&format!("{env}: live state read inside it"), read);
}

/// The describe calls a prod plan makes, one after another; returns their summed time.
async fn describes_in_turn(moto: &Moto) -> f64 {
    let start = Instant::now();
    for g in ["petclinic-prod-web", "petclinic-prod-was"] {
        query(
            &moto.url,
            "autoscaling",
            "DescribeAutoScalingGroups",
            &[("AutoScalingGroupNames.member.1", g)],
        )
        .await;
        query(
            &moto.url,
            "autoscaling",
            "DescribePolicies",
            &[("AutoScalingGroupName", g)],
        )
        .await;
        query(
            &moto.url,
            "autoscaling",
            "DescribeScheduledActions",
            &[("AutoScalingGroupName", g)],
        )
        .await;
        let prefix = format!("tierdeck-{g}-cpu-");
        query(
            &moto.url,
            "monitoring",
            "DescribeAlarms",
            &[("AlarmNamePrefix", prefix.as_str())],
        )
        .await;
    }
    query(
        &moto.url,
        "rds",
        "DescribeDBInstances",
        &[("DBInstanceIdentifier", "petclinic-prod-db")],
    )
    .await;
    let names = [
        "petclinic-prod-ext-alb-sg",
        "petclinic-prod-web-sg",
        "petclinic-prod-int-alb-sg",
        "petclinic-prod-was-sg",
        "petclinic-prod-db-sg",
    ];
    let mut params = vec![("Filter.1.Name".to_owned(), "group-name".to_owned())];
    for (i, n) in names.iter().enumerate() {
        params.push((format!("Filter.1.Value.{}", i + 1), (*n).to_owned()));
    }
    let params: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    query(&moto.url, "ec2", "DescribeSecurityGroups", &params).await;
    start.elapsed().as_secs_f64() * 1000.0
}

/// Applies change `id` and returns the wall time until it is applied.
async fn timed_apply(api: &Api, id: &serde_json::Value) -> f64 {
    let start = Instant::now();
    let res = api.post(&format!("/api/v1/changes/{id}/apply")).await;
    assert_eq!(res.status(), 202);
    wait_for("the apply", 300, || async {
        let d = api.get_json(&format!("/api/v1/changes/{id}")).await;
        (d["summary"]["status"] == "applied").then_some(())
    })
    .await;
    start.elapsed().as_secs_f64() * 1000.0
}

async fn applies(moto: &Moto, repo: &SpecRepo) {
    let app = TestApp::watching(&repo.url(), 3600, Some(&moto.url)).await;
    let api = app.api_as("olga", "operator").await;
    let id = api.change_for("prod", &repo.head()).await["id"].clone();
    let d = api.planned(&id).await;
    let n = d["plan"]["plan"]["operations"].as_array().unwrap().len();
    println!(
        "prod: first full apply ({n} operations): {:.0} ms",
        timed_apply(&api, &id).await
    );
    let commit = repo.raise_was_peak(SEJIN);
    assert_eq!(api.post("/api/v1/sync").await.status(), 200);
    let id = api.change_for("prod", &commit).await["id"].clone();
    let d = api.planned(&id).await;
    let n = d["plan"]["plan"]["operations"].as_array().unwrap().len();
    println!(
        "prod: one-field change apply ({n} operation): {:.0} ms",
        timed_apply(&api, &id).await
    );
}

fn synthetic_repo(groups: usize) -> SpecRepo {
    let repo = SpecRepo::petclinic();
    repo.commit(("Bench", "bench@example.com"), "A large environment", |work| {
        let dir = work.join("environments/large");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("environment.yaml"), "environment:\n  name: large\n  region: ap-northeast-2\n").unwrap();
        let mut text = String::from("autoscaling_groups:\n");
        for i in 0..groups {
            text.push_str(&format!(
                "  - name: large-{i:03}\n    tier: web\n    min: 2\n    max: 8\n    cpu_scaling: {{ scale_out_above: 50, scale_in_below: 30 }}\n    schedule:\n      - {{ name: large-{i:03}-night, cron: \"0 0 * * *\", timezone: Asia/Seoul, min: 2 }}\n"
            ));
        }
        std::fs::write(dir.join("autoscaling.yaml"), text).unwrap();
    });
    repo
}

#[tokio::main]
async fn main() {
    let moto = Moto::start().await;
    let repo = SpecRepo::petclinic_ungated();
    moto.sandbox(&repo.work).await;
    plans(&moto, &repo, "prod", 20).await;
    let floor: Vec<f64> = {
        let mut v = Vec::new();
        for _ in 0..20 {
            v.push(describes_in_turn(&moto).await);
        }
        v
    };
    report("prod: the same describe calls in turn, summed", floor);
    applies(&moto, &repo).await;

    let large = synthetic_repo(200);
    let started = Instant::now();
    moto.sandbox(&large.work).await;
    println!(
        "sandbox of 200 groups created in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    plans(&moto, &large, "large", 5).await;
}
