//! Plan timings against the AWS emulator (not run by the test suite):
//!
//! `cargo bench -p tierdeck-tests --bench plan` after `cargo leptos build --release`.
//!
//! 1. `examples/petclinic` prod: 20 plans through `POST /api/v1/changes/{id}/plan`, with the
//!    time tierdeck spent reading the live state (its describe calls run concurrently);
//! 2. a synthetic environment of 200 groups.

use std::time::Instant;

use tierdeck_tests::git::SpecRepo;
use tierdeck_tests::{wait_for, Moto, TestApp};

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
    let repo = SpecRepo::petclinic();
    moto.sandbox(&repo.work).await;
    plans(&moto, &repo, "prod", 20).await;

    let large = synthetic_repo(200);
    let started = Instant::now();
    moto.sandbox(&large.work).await;
    println!(
        "sandbox of 200 groups created in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    plans(&moto, &large, "large", 5).await;
}
