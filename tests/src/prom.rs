//! A real Prometheus for tests, served on a free loopback port and stopped on drop: its storage
//! filled by `promtool tsdb create-blocks-from openmetrics` from generated traffic, or scraping
//! [`LiveTraffic`] every second.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Stdio;

use tokio::process::{Child, Command};

use crate::{free_port, wait_until_ok};

/// One job's traffic: a constant request rate, and incidents during which part of it fails.
#[derive(Debug, Clone)]
pub struct Traffic {
    pub job: String,
    pub requests_per_sec: f64,
    /// (start, end, failed requests per second), Unix seconds.
    pub incidents: Vec<(i64, i64, f64)>,
}

impl Traffic {
    fn failing_at(&self, t: i64) -> f64 {
        self.incidents
            .iter()
            .filter(|(a, b, _)| (*a..*b).contains(&t))
            .map(|(_, _, r)| *r)
            .sum()
    }
}

/// Samples every `step` seconds from `start` to `end` of `http_requests_total{job,code}` (200
/// and 500) and `http_request_duration_seconds` (every request under 0.4 s), as OpenMetrics.
pub fn openmetrics(traffic: &[Traffic], start: i64, end: i64, step: i64) -> String {
    let mut out =
        String::from("# HELP http_requests Requests served.\n# TYPE http_requests counter\n");
    for tr in traffic {
        let (mut ok, mut failed) = (0.0, 0.0);
        let mut t = start;
        while t <= end {
            for (code, v) in [("200", ok), ("500", failed)] {
                let _ = writeln!(
                    out,
                    "http_requests_total{{code=\"{code}\",job=\"{}\"}} {v} {t}",
                    tr.job
                );
            }
            let bad = tr.failing_at(t) * step as f64;
            failed += bad;
            ok += tr.requests_per_sec * step as f64 - bad;
            t += step;
        }
    }
    out.push_str(
        "# HELP http_request_duration_seconds Request latency.\n# TYPE http_request_duration_seconds histogram\n",
    );
    for tr in traffic {
        let mut n = 0.0;
        let mut t = start;
        while t <= end {
            for le in ["0.4", "+Inf"] {
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{job=\"{}\",le=\"{le}\"}} {n} {t}",
                    tr.job
                );
            }
            let _ = writeln!(
                out,
                "http_request_duration_seconds_count{{job=\"{}\"}} {n} {t}",
                tr.job
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_sum{{job=\"{}\"}} {:.1} {t}",
                tr.job,
                n * 0.1
            );
            n += tr.requests_per_sec * step as f64;
            t += step;
        }
    }
    out.push_str(&node_metrics(start, end, step));
    out.push_str("# EOF\n");
    out
}

/// node_exporter series of two hosts (`tier="web"` at 30 % CPU, `tier="was"` at 50 %), each with
/// 60 % of its memory used, 3,000 B/s of disk I/O and 10,000 B/s of network.
fn node_metrics(start: i64, end: i64, step: i64) -> String {
    let hosts = [("web", "web-1", 0.7), ("was", "was-1", 0.5)];
    let counters: [(&str, &str, &str, f64); 5] = [
        (
            "node_cpu_seconds",
            "node_cpu_seconds_total",
            "cpu=\"0\",mode=\"idle\",",
            0.0,
        ),
        (
            "node_disk_read_bytes",
            "node_disk_read_bytes_total",
            "device=\"sda\",",
            1_000.0,
        ),
        (
            "node_disk_written_bytes",
            "node_disk_written_bytes_total",
            "device=\"sda\",",
            2_000.0,
        ),
        (
            "node_network_receive_bytes",
            "node_network_receive_bytes_total",
            "device=\"eth0\",",
            5_000.0,
        ),
        (
            "node_network_transmit_bytes",
            "node_network_transmit_bytes_total",
            "device=\"eth0\",",
            5_000.0,
        ),
    ];
    let mut out = String::new();
    for (family, sample, labels, per_sec) in counters {
        let _ = writeln!(
            out,
            "# HELP {family} node_exporter.\n# TYPE {family} counter"
        );
        for (tier, instance, idle) in hosts {
            let rate = if family == "node_cpu_seconds" {
                idle
            } else {
                per_sec
            };
            let mut t = start;
            while t <= end {
                let _ = writeln!(
                    out,
                    "{sample}{{{labels}instance=\"{instance}\",job=\"node\",tier=\"{tier}\"}} {} {t}",
                    (t - start) as f64 * rate
                );
                t += step;
            }
        }
    }
    for (family, value) in [
        ("node_memory_MemAvailable_bytes", 4e9),
        ("node_memory_MemTotal_bytes", 1e10),
    ] {
        let _ = writeln!(out, "# HELP {family} node_exporter.\n# TYPE {family} gauge");
        for (tier, instance, _) in hosts {
            let mut t = start;
            while t <= end {
                let _ = writeln!(
                    out,
                    "{family}{{instance=\"{instance}\",job=\"node\",tier=\"{tier}\"}} {value} {t}"
                );
                t += step;
            }
        }
    }
    out
}

pub struct Prometheus {
    pub url: String,
    _child: Child,
    _dir: tempfile::TempDir,
}

fn program(name: &str) -> PathBuf {
    let p = PathBuf::from(format!("/usr/bin/{name}"));
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup --test (it installs Debian's prometheus)",
        p.display()
    );
    p
}

impl Prometheus {
    /// Loads `openmetrics` into a fresh storage and starts Prometheus on it.
    pub async fn with_data(openmetrics: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("input.om");
        std::fs::write(&input, openmetrics).unwrap();
        let data = dir.path().join("data");
        let out = Command::new(program("promtool"))
            .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
            // A few large blocks instead of one per 2 hours: 0.4 s instead of 26 s for 31 days.
            .arg("--max-block-duration=744h")
            .arg(&input)
            .arg(&data)
            .output()
            .await
            .expect("running promtool");
        assert!(
            out.status.success(),
            "promtool: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, "global:\n  scrape_interval: 1m\n").unwrap();
        Self::start(dir, &config).await
    }
}

pub const DAY: i64 = 86_400;

/// The end of the generated data (a whole minute, just past), and the incidents:
/// prod fails 20 of its 100 requests/s for 2 h five days before the end (144,000 failures,
/// 55.6 % of its 259,200 budget); staging fails all of its 100/s for 4 h ten days before
/// (1,440,000 failures, more than the 1,296,000 its 99.5 % allows).
pub struct Data {
    pub end: i64,
    pub prod_incident: (i64, i64),
}

/// The traffic of [`petclinic_month`], ending at `end`.
pub fn petclinic_traffic(end: i64) -> Vec<Traffic> {
    let prod_incident = (end - 5 * DAY, end - 5 * DAY + 2 * 3600);
    let staging_incident = (end - 10 * DAY, end - 10 * DAY + 4 * 3600);
    vec![
        Traffic {
            job: "petclinic".into(),
            requests_per_sec: 100.0,
            incidents: vec![(prod_incident.0, prod_incident.1, 20.0)],
        },
        Traffic {
            job: "petclinic-staging".into(),
            requests_per_sec: 100.0,
            incidents: vec![(staging_incident.0, staging_incident.1, 100.0)],
        },
    ]
}

/// A panel watching `examples/petclinic` (AWS at `aws`, if given) with a Prometheus holding
/// [`petclinic_month`]'s data. Keep all four alive for the test.
pub async fn petclinic_panel(
    aws: Option<&str>,
) -> (Prometheus, Data, crate::git::SpecRepo, crate::TestApp) {
    let (prom, data) = petclinic_month().await;
    let repo = crate::git::SpecRepo::petclinic();
    let app = crate::TestApp::watching_with(
        &repo.url(),
        3600,
        aws,
        &[("TIERDECK_PROMETHEUS__URL", &prom.url)],
    )
    .await;
    (prom, data, repo, app)
}

pub async fn petclinic_month() -> (Prometheus, Data) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let end = now - now % 60;
    let prod_incident = (end - 5 * DAY, end - 5 * DAY + 2 * 3600);
    let traffic = petclinic_traffic(end);
    let text = openmetrics(&traffic, end - 31 * DAY, end, 300);
    (
        Prometheus::with_data(&text).await,
        Data { end, prod_incident },
    )
}

/// Live PetClinic traffic for Prometheus to scrape: `http_requests_total{code}` counters on a
/// free loopback port growing at a request rate of which a chosen part fails from a chosen
/// moment on (an error spike after an apply).
pub struct LiveTraffic {
    /// `127.0.0.1:PORT`, a scrape target.
    pub target: String,
    counters: std::sync::Arc<std::sync::Mutex<Counters>>,
    task: tokio::task::JoinHandle<()>,
}

struct Counters {
    ok: f64,
    failed: f64,
    per_sec: f64,
    failing: f64,
    at: std::time::Instant,
}

impl Counters {
    fn advance(&mut self) {
        let now = std::time::Instant::now();
        let secs = (now - self.at).as_secs_f64();
        self.failed += self.per_sec * self.failing * secs;
        self.ok += self.per_sec * (1.0 - self.failing) * secs;
        self.at = now;
    }
}

impl LiveTraffic {
    pub async fn start(requests_per_sec: f64) -> LiveTraffic {
        let counters = std::sync::Arc::new(std::sync::Mutex::new(Counters {
            ok: 0.0,
            failed: 0.0,
            per_sec: requests_per_sec,
            failing: 0.0,
            at: std::time::Instant::now(),
        }));
        let state = counters.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let state = state.clone();
                async move {
                    let mut c = state.lock().unwrap();
                    c.advance();
                    format!(
                        "# TYPE http_requests_total counter\nhttp_requests_total{{code=\"200\"}} {}\nhttp_requests_total{{code=\"500\"}} {}\n",
                        c.ok, c.failed
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        LiveTraffic {
            target,
            counters,
            task,
        }
    }

    /// From now on `fraction` of the requests fail (500).
    pub fn fail(&self, fraction: f64) {
        let mut c = self.counters.lock().unwrap();
        c.advance();
        c.failing = fraction.clamp(0.0, 1.0);
    }
}

impl Drop for LiveTraffic {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Prometheus {
    /// A Prometheus with empty storage scraping `target` every second as job `job`.
    pub async fn scraping(job: &str, target: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: [\"{target}\"]\n"
            ),
        )
        .unwrap();
        Self::start(dir, &config).await
    }

    async fn start(dir: tempfile::TempDir, config: &std::path::Path) -> Prometheus {
        let data = dir.path().join("data");
        let port = free_port().unwrap();
        let child = Command::new(program("prometheus"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg("--storage.tsdb.retention.time=90d")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting prometheus");
        let url = format!("http://127.0.0.1:{port}");
        wait_until_ok("Prometheus to be ready", &format!("{url}/-/ready"), 60).await;
        Prometheus {
            url,
            _child: child,
            _dir: dir,
        }
    }
}
