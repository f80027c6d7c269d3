//! A real Prometheus for tests, served on a free loopback port and stopped on drop: its storage
//! filled by `promtool tsdb create-blocks-from openmetrics` from generated traffic, or scraping
//! [`LiveTraffic`] every second.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Stdio;

use tokio::process::{Child, Command};

use crate::{free_port, wait_until_ok};

/// Seoul is UTC+9 all year (no daylight saving since 1988): its hour of day is plain arithmetic.
pub const SEOUL_OFFSET: i64 = 9 * 3600;

/// PetClinic's requests per second through a Seoul day, hour by hour (the hour starting at
/// that index): a night floor, business hours, the evening rise from 18:00 and the peak from
/// 19:00 to 22:00 that the seed's table is built around (1,000–2,000 visitors at the peak
/// against 300 a day), then the wind-down. Its mean is exactly 100 requests/s, so 30 days
/// hold the seed's 259,200,000 requests; 14:00–16:00 run at exactly 100/s.
pub const PETCLINIC_DAY: [f64; 24] = [
    30.0, 22.0, 18.0, 16.0, 16.0, 20.0, 30.0, 43.0, 55.0, 70.0, 80.0, 90.0, //
    90.0, 90.0, 100.0, 100.0, 90.0, 90.0, 130.0, 330.0, 380.0, 330.0, 130.0, 50.0,
];

/// The Seoul hour of day (0–23) at Unix time `t`.
pub fn seoul_hour(t: i64) -> usize {
    ((t + SEOUL_OFFSET).rem_euclid(DAY) / 3600) as usize
}

/// The Seoul minute of the hour at Unix time `t`.
fn seoul_minute(t: i64) -> i64 {
    (t + SEOUL_OFFSET).rem_euclid(3600) / 60
}

/// Instances in service per tier at a Seoul time, as the seed's schedule and the CPU policy
/// (out above 50 %, in below 30 %) leave them: 2 each until the 18:50 pre-scale (web 4, was
/// 5), scaled out by CPU through the peak (web 5–6, was 6–7), 3 after the 22:00 wind-down
/// and 2 again once CPU falls below 30 % at 23:00.
pub fn instances_at(t: i64) -> (u32, u32) {
    match (seoul_hour(t), seoul_minute(t)) {
        (18, m) if m >= 50 => (4, 5),
        (19, _) => (5, 6),
        (20 | 21, _) => (6, 7),
        (22, _) => (3, 3),
        _ => (2, 2),
    }
}

/// The request rate of the daily curve at `t`.
pub fn petclinic_rate_at(t: i64) -> f64 {
    PETCLINIC_DAY[seoul_hour(t)]
}

/// Each tier's average CPU (percent) at `t`: a 5 % floor plus a share per request spread over
/// the tier's instances (web 0.66 %, was 0.7 % per request/s per instance). The web tier
/// nears 50 % before the 18:50 pre-scale and 30 % after the wind-down; the was tier nears
/// 50 % at 18:00.
pub fn cpu_at(t: i64) -> (f64, f64) {
    let rate = petclinic_rate_at(t);
    let (web, was) = instances_at(t);
    (
        5.0 + 0.66 * rate / f64::from(web),
        5.0 + 0.7 * rate / f64::from(was),
    )
}

/// Of a moment's requests, the shares that take at most 0.1 s, 0.1–0.2 s and 0.2–0.4 s
/// (none takes longer: the latency SLO holds): slower as the load nears the peak's 380/s.
pub fn latency_shares(rate: f64) -> [f64; 3] {
    let load = (rate / 380.0).clamp(0.0, 1.0);
    let slow = 0.02 + 0.18 * load;
    let middle = 0.3 + 0.2 * load;
    [1.0 - slow - middle, middle, slow]
}

/// The 95th percentile Prometheus's `histogram_quantile` reads from [`latency_shares`]
/// (linear inside a bucket).
pub fn p95_of(shares: [f64; 3]) -> f64 {
    let bounds = [(0.0, 0.1), (0.1, 0.2), (0.2, 0.4)];
    let mut below = 0.0;
    for (share, (lo, hi)) in shares.into_iter().zip(bounds) {
        if below + share >= 0.95 {
            return lo + (hi - lo) * (0.95 - below) / share;
        }
        below += share;
    }
    0.4
}

/// How a job's requests per second run through the day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// The same rate all day (staging's synthetic checks).
    Flat(f64),
    /// [`PETCLINIC_DAY`], by the hour in Seoul.
    SeoulDay,
}

/// One job's traffic: its rate through the day, and incidents during which part of it fails.
#[derive(Debug, Clone)]
pub struct Traffic {
    pub job: String,
    pub shape: Shape,
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

    pub fn rate_at(&self, t: i64) -> f64 {
        match self.shape {
            Shape::Flat(r) => r,
            Shape::SeoulDay => petclinic_rate_at(t),
        }
    }
}

/// Samples every `step` seconds from `start` to `end` of `http_requests_total{job,code}` (200
/// and 500) and `http_request_duration_seconds` (buckets at 0.1, 0.2 and 0.4 s: see
/// [`latency_shares`]), as OpenMetrics. Each sample's counters grow by the rates at the sample
/// before, so a rate over samples on the step's grid is exact.
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
            ok += tr.rate_at(t) * step as f64 - bad;
            t += step;
        }
    }
    out.push_str(
        "# HELP http_request_duration_seconds Request latency.\n# TYPE http_request_duration_seconds histogram\n",
    );
    for tr in traffic {
        // Cumulative counts at le 0.1, 0.2, 0.4 (= +Inf = count), and the sum of seconds.
        let (mut le, mut sum) = ([0.0_f64; 3], 0.0);
        let mut t = start;
        while t <= end {
            for (bound, n) in [
                ("0.1", le[0]),
                ("0.2", le[1]),
                ("0.4", le[2]),
                ("+Inf", le[2]),
            ] {
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{job=\"{}\",le=\"{bound}\"}} {n} {t}",
                    tr.job
                );
            }
            let _ = writeln!(
                out,
                "http_request_duration_seconds_count{{job=\"{}\"}} {} {t}",
                tr.job, le[2]
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_sum{{job=\"{}\"}} {sum:.1} {t}",
                tr.job
            );
            let n = tr.rate_at(t) * step as f64;
            let [fast, middle, slow] = latency_shares(tr.rate_at(t));
            le[0] += n * fast;
            le[1] += n * (fast + middle);
            le[2] += n;
            sum += n * (0.05 * fast + 0.15 * middle + 0.3 * slow);
            t += step;
        }
    }
    out.push_str(&node_metrics(start, end, step));
    out.push_str("# EOF\n");
    out
}

/// node_exporter series of the two tiers, one host each carrying its tier's average
/// ([`cpu_at`]); memory 55–65 % used as the load grows, disk I/O of 1,000 B/s plus 50 B per
/// request, network of 20,000 B per request (in and out alike).
fn node_metrics(start: i64, end: i64, step: i64) -> String {
    let hosts = [("web", "web-1"), ("was", "was-1")];
    // Per second at `t` for a tier (0 web, 1 was).
    let cpu_idle = |t: i64, tier: usize| {
        let (web, was) = cpu_at(t);
        1.0 - [web, was][tier] / 100.0
    };
    let disk = |t: i64, _| 500.0 + 25.0 * petclinic_rate_at(t);
    let net = |t: i64, _| 10_000.0 * petclinic_rate_at(t);
    type PerSec = dyn Fn(i64, usize) -> f64;
    let counters: [(&str, &str, &str, &PerSec); 5] = [
        (
            "node_cpu_seconds",
            "node_cpu_seconds_total",
            "cpu=\"0\",mode=\"idle\",",
            &cpu_idle,
        ),
        (
            "node_disk_read_bytes",
            "node_disk_read_bytes_total",
            "device=\"sda\",",
            &disk,
        ),
        (
            "node_disk_written_bytes",
            "node_disk_written_bytes_total",
            "device=\"sda\",",
            &disk,
        ),
        (
            "node_network_receive_bytes",
            "node_network_receive_bytes_total",
            "device=\"eth0\",",
            &net,
        ),
        (
            "node_network_transmit_bytes",
            "node_network_transmit_bytes_total",
            "device=\"eth0\",",
            &net,
        ),
    ];
    let mut out = String::new();
    for (family, sample, labels, per_sec) in counters {
        let _ = writeln!(
            out,
            "# HELP {family} node_exporter.\n# TYPE {family} counter"
        );
        for (i, (tier, instance)) in hosts.into_iter().enumerate() {
            let (mut v, mut t) = (0.0, start);
            while t <= end {
                let _ = writeln!(
                    out,
                    "{sample}{{{labels}instance=\"{instance}\",job=\"node\",tier=\"{tier}\"}} {v} {t}"
                );
                v += per_sec(t, i) * step as f64;
                t += step;
            }
        }
    }
    // Memory gauges: the total, and what is available as the load grows.
    let memory: [(&str, &dyn Fn(i64) -> f64); 2] = [
        ("node_memory_MemTotal_bytes", &|_| MEMORY),
        ("node_memory_MemAvailable_bytes", &|t| {
            MEMORY * (1.0 - memory_used_at(t) / 100.0)
        }),
    ];
    for (family, value) in memory {
        let _ = writeln!(out, "# HELP {family} node_exporter.\n# TYPE {family} gauge");
        for (tier, instance) in hosts {
            let mut t = start;
            while t <= end {
                let _ = writeln!(
                    out,
                    "{family}{{instance=\"{instance}\",job=\"node\",tier=\"{tier}\"}} {} {t}",
                    value(t)
                );
                t += step;
            }
        }
    }
    out
}

/// Each host's memory: 10 GB.
const MEMORY: f64 = 1e10;

/// The share of memory in use (percent) at `t`: 55 % idle, 65 % at the peak's 380/s.
pub fn memory_used_at(t: i64) -> f64 {
    55.0 + 10.0 * (petclinic_rate_at(t) / 380.0).min(1.0)
}

/// Disk I/O (read and written, B/s) and network (received and sent, B/s) of a tier at `t`.
pub fn io_at(t: i64) -> (f64, f64) {
    let rate = petclinic_rate_at(t);
    (2.0 * (500.0 + 25.0 * rate), 2.0 * 10_000.0 * rate)
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

/// The end of the generated data (a whole [`SAMPLE_STEP`], just past: samples fall on whole
/// two minutes, so a rate at a whole hour reads whole samples), and prod's incident.
pub struct Data {
    pub end: i64,
    pub prod_incident: (i64, i64),
}

/// The start of 14:00 in Seoul on the day `days` before the one holding `end`.
pub fn seoul_afternoon(end: i64, days: i64) -> i64 {
    let local_day = (end + SEOUL_OFFSET).div_euclid(DAY) - days;
    local_day * DAY - SEOUL_OFFSET + 14 * 3600
}

/// The traffic of [`petclinic_month`], ending at `end`: prod follows [`PETCLINIC_DAY`] and
/// fails 20 of its 100 requests/s from 14:00 to 16:00 Seoul five days before (144,000
/// failures, 55.6 % of its 259,200 budget); staging's synthetic checks run at a flat 100/s and
/// all fail for 4 h ten days before (1,440,000 failures, more than the 1,296,000 its 99.5 %
/// allows).
pub fn petclinic_traffic(end: i64) -> Vec<Traffic> {
    let prod = prod_incident(end);
    let staging_incident = (end - 10 * DAY, end - 10 * DAY + 4 * 3600);
    vec![
        Traffic {
            job: "petclinic".into(),
            shape: Shape::SeoulDay,
            incidents: vec![(prod.0, prod.1, 20.0)],
        },
        Traffic {
            job: "petclinic-staging".into(),
            shape: Shape::Flat(100.0),
            incidents: vec![(staging_incident.0, staging_incident.1, 100.0)],
        },
    ]
}

/// Prod's incident: 14:00–16:00 in Seoul, five days before the day of `end`.
pub fn prod_incident(end: i64) -> (i64, i64) {
    let start = seoul_afternoon(end, 5);
    (start, start + 2 * 3600)
}

/// Seconds between generated samples: two minutes, so every 5-minute rate has at least two
/// (a rate needs two) and whole hours, days and the 5-minute burn window's hour-long
/// neighbours fall on samples.
pub const SAMPLE_STEP: i64 = 120;

/// The end of generated data made now: the last whole [`SAMPLE_STEP`].
pub fn data_end_now() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    now - now % SAMPLE_STEP
}

/// Whether the generated rates hold still over the 5 minutes before `t` (no hour or capacity
/// change inside): a 5-minute rate at `t` then reads exactly the model's values at `t`.
pub fn steady(t: i64) -> bool {
    seoul_hour(t - 300) == seoul_hour(t) && instances_at(t - 300) == instances_at(t)
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
    let end = data_end_now();
    let traffic = petclinic_traffic(end);
    let text = openmetrics(&traffic, end - 31 * DAY, end, SAMPLE_STEP);
    (
        Prometheus::with_data(&text).await,
        Data {
            end,
            prod_incident: prod_incident(end),
        },
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The requests each Seoul hour of the generated day starting at `day_start` (a Seoul
    /// midnight), read back from the OpenMetrics counters as Prometheus would.
    fn generated_hours(day_start: i64) -> Vec<f64> {
        let traffic = petclinic_traffic(day_start + 30 * DAY);
        let text = openmetrics(&traffic[..1], day_start, day_start + DAY, 300);
        let mut total_at: std::collections::BTreeMap<i64, f64> = Default::default();
        for line in text
            .lines()
            .filter(|l| l.starts_with("http_requests_total{") && l.contains("job=\"petclinic\""))
        {
            let mut parts = line.rsplit(' ');
            let t: i64 = parts.next().unwrap().parse().unwrap();
            let v: f64 = parts.next().unwrap().parse().unwrap();
            *total_at.entry(t).or_default() += v;
        }
        (0..24)
            .map(|h| total_at[&(day_start + (h + 1) * 3600)] - total_at[&(day_start + h * 3600)])
            .collect()
    }

    #[test]
    fn the_demo_day_follows_the_seeds_table() {
        // A Seoul midnight (2026-12-06 00:00 KST), far from the incident.
        let day_start = 1_796_482_800;
        assert_eq!(seoul_hour(day_start), 0);
        let hours: Vec<f64> = generated_hours(day_start)
            .into_iter()
            .map(|n| n / 3600.0)
            .collect();
        assert_eq!(
            hours, PETCLINIC_DAY,
            "the generated counters follow the curve"
        );

        // The seed: 300 visitors a day, 1,000–2,000 at the evening peak (19–22 h). The peak
        // hours stand above the day's median hour by that ratio.
        let mut sorted = hours.clone();
        sorted.sort_by(f64::total_cmp);
        let median = (sorted[11] + sorted[12]) / 2.0;
        let peak = hours[19..22].iter().sum::<f64>() / 3.0;
        let ratio = peak / median;
        assert!(
            (1_000.0 / 300.0..=2_000.0 / 300.0).contains(&ratio),
            "peak {peak}/s over median {median}/s: {ratio}"
        );
        let outside_peak = hours[..19]
            .iter()
            .chain(&hours[22..])
            .fold(0.0_f64, |a, b| a.max(*b));
        assert!(hours[19..22].iter().all(|h| *h > 2.0 * outside_peak));
        // A mean of 100/s: 30 days hold the seed's 259,200,000 requests.
        assert_eq!(hours.iter().sum::<f64>() * 3600.0 * 30.0, 259_200_000.0);
        // The incident's hours run at 100/s: 20 failing is 20 %.
        assert_eq!((hours[14], hours[15]), (100.0, 100.0));
    }

    #[test]
    fn instances_follow_the_seeds_schedule_and_cpu_nears_its_thresholds() {
        let day_start = 1_796_482_800;
        let at = |h: i64, m: i64| day_start + h * 3600 + m * 60;
        // The seed's table: (from, web range, was range).
        type Row = ((i64, i64), (u32, u32), (u32, u32));
        let table: [Row; 6] = [
            ((0, 0), (2, 2), (2, 2)),
            ((9, 0), (2, 2), (2, 2)),
            ((18, 50), (3, 4), (3, 5)),
            ((19, 0), (4, 6), (5, 7)),
            ((22, 0), (2, 3), (2, 3)),
            ((23, 30), (2, 3), (2, 3)),
        ];
        for ((h, m), web, was) in table {
            let (w, a) = instances_at(at(h, m));
            assert!((web.0..=web.1).contains(&w), "web {w} at {h}:{m:02}");
            assert!((was.0..=was.1).contains(&a), "was {a} at {h}:{m:02}");
        }
        // CPU stays at or under the 50 % scale-out threshold (give or take the moment before
        // a scale-out), nears it just before the pre-scale and nears the 30 % scale-in one
        // after the wind-down.
        for minute in (0..DAY / 60).step_by(10) {
            let (web, was) = cpu_at(day_start + minute * 60);
            assert!(web <= 51.0 && was <= 51.0, "{web} {was} at minute {minute}");
        }
        let (web, was) = cpu_at(at(18, 40));
        assert!(
            (45.0..=51.0).contains(&web) && (45.0..=51.0).contains(&was),
            "{web} {was}"
        );
        let (web, was) = cpu_at(at(22, 30));
        assert!(
            (30.0..=40.0).contains(&web) && (30.0..=40.0).contains(&was),
            "{web} {was}"
        );
        // Latency rises with the load, under the SLO's 400 ms.
        let night = p95_of(latency_shares(petclinic_rate_at(at(3, 0))));
        let peak = p95_of(latency_shares(petclinic_rate_at(at(20, 0))));
        assert!(night < 0.2 && (0.3..0.4).contains(&peak), "{night} {peak}");
    }

    #[test]
    fn the_incident_falls_on_a_seoul_afternoon_five_days_before() {
        let end = 1_796_482_800 + 3 * DAY + 5 * 3600;
        let (start, stop) = prod_incident(end);
        assert_eq!((seoul_hour(start), seoul_hour(stop)), (14, 16));
        let seoul_day = |t: i64| (t + SEOUL_OFFSET).div_euclid(DAY);
        assert_eq!(seoul_day(end) - seoul_day(start), 5);
        assert_eq!(start % SAMPLE_STEP, 0, "on the samples' grid");
    }
}
