//! SLO and monitoring timings against a real Prometheus holding 30 days of generated traffic
//! (not run by the test suite): `cargo bench -p tierdeck-tests --bench slo`.
//!
//! For each view: the first request (Prometheus answers every query: cold) and the next ones
//! within the cache time (tierdeck reuses the answers: cached), through the API and as pages.

use std::time::Instant;

use tierdeck_tests::git::SpecRepo;
use tierdeck_tests::prom::petclinic_month;
use tierdeck_tests::TestApp;

async fn timed<F, Fut>(what: &str, n: usize, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    let mut ms = Vec::new();
    for _ in 0..n {
        let start = Instant::now();
        let status = f().await;
        assert_eq!(status, 200, "{what}");
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let cold = ms[0];
    let mut warm = ms[1..].to_vec();
    warm.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{what}: cold {cold:.0} ms, cached p50 {:.1} ms (n={})",
        warm[warm.len() / 2],
        warm.len()
    );
}

#[tokio::main]
async fn main() {
    let started = Instant::now();
    let (prom, data) = petclinic_month().await;
    println!(
        "30 days of traffic loaded into Prometheus in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let repo = SpecRepo::petclinic();
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        None,
        &[
            ("TIERDECK_PROMETHEUS__URL", &prom.url),
            ("TIERDECK_PROMETHEUS__CACHE_SECS", "60"),
        ],
    )
    .await;
    let api = app.api_as("vic", "viewer").await;
    api.change_for("prod", &repo.head()).await;
    let r = api
        .get_json(&format!(
            "/api/v1/environments/prod/slo?at={}",
            data.end - 3600
        ))
        .await;
    println!("SLO view of prod: {} Prometheus queries", r["queries"]);
    timed("GET /api/v1/environments/prod/slo", 11, || async {
        api.get(&format!("/api/v1/environments/prod/slo?at={}", data.end))
            .await
            .status()
            .as_u16()
    })
    .await;
    for range in ["1h", "24h", "7d"] {
        let m = api
            .get_json(&format!(
                "/api/v1/environments/prod/monitoring?range={range}&end={}",
                data.end - 7200
            ))
            .await;
        println!(
            "monitoring {range}: {} Prometheus range queries",
            m["queries"]
        );
        timed(
            &format!("GET /api/v1/environments/prod/monitoring?range={range}"),
            11,
            || async {
                api.get(&format!(
                    "/api/v1/environments/prod/monitoring?range={range}&end={}",
                    data.end
                ))
                .await
                .status()
                .as_u16()
            },
        )
        .await;
    }
    let page = app.login_new("sam", "viewer").await;
    // Pages ask for now; the first one is cold, the rest reuse the answers.
    // A page's body streams in as its data arrives: time the whole body.
    let whole = |path: &'static str| {
        let page = &page;
        async move {
            let res = page.get(path).await;
            let status = res.status().as_u16();
            let body = res.text().await.unwrap();
            assert!(body.contains("</html>"), "{path}");
            status
        }
    };
    timed("page /slo?env=prod", 11, || whole("/slo?env=prod")).await;
    timed("page /monitoring?env=prod&range=24h", 11, || {
        whole("/monitoring?env=prod&range=24h")
    })
    .await;
}
