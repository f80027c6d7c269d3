//! Plan timings against the AWS emulator (not run by the test suite):
//!
//! `cargo bench -p tierdeck-tests --bench plan` after `cargo xtask build --release` (the bench
//! runs the release binary beside it; `TIERDECK_BIN` names another).
//!
//! 1. `examples/petclinic` prod: 20 plans through `POST /api/v1/changes/{id}/plan`, with the
//!    time tierdeck spent reading the live state and the AWS calls it made, next to the same
//!    describe calls made one after another from here (their summed time);
//! 2. server-side rendering: requests per second of the overview and a change page against
//!    `/healthz`, 32 connections on loopback;
//! 3. applying prod: the first full apply, then a one-field change;
//! 4. a synthetic environment of 200 groups: calls, p50 and p95 of its first plan against moto,
//!    then, applied (400 policies and alarms, 200 scheduled actions), of a one-field change read
//!    through the tests' AWS proxy paging by 100 as AWS does, and the server's peak resident
//!    memory.
//! 5. terraform on the same emulator: `tests/benches/terraform/main.tf` (prod's groups with
//!    their launch templates, policies, alarms and schedules, the security groups with their
//!    rules, the database) applied to a moto of its own, then `TIERDECK_BENCH_TF_RUNS`
//!    (default 10) runs of `terraform plan -refresh=true` and of `-refresh=false` (terraform's
//!    own overhead), the AWS calls of each counted in one more plan through a counting proxy,
//!    and tierdeck's plan of the state terraform applied beside them. Skipped, in one line,
//!    without `terraform` (`TIERDECK_TERRAFORM`, or on `PATH`) or the AWS provider 5.100.0
//!    under `/opt/tf-plugins` (`TIERDECK_TF_PLUGINS`); terraform talks to loopback only.
//!
//! 6. network ACLs: prod planned 20 times with its subnets and network ACLs
//!    (`environments/prod/network.yaml`), and 20 times from a commit without that file, against
//!    the same emulator, through the API as in 1.
//!
//! Arguments name the parts to run (`prod`, `ssr`, `apply`, `large`, `terraform`, `nacl`; all
//! when none): `cargo bench -p tierdeck-tests --bench plan -- ssr`. `TIERDECK_BENCH_SSR_PATHS` names
//! the pages to measure (comma-separated; the overview and a change page unless set).
//! `TIERDECK_BENCH_SSR_SECS` (default 5)
//! sets how long each SSR path is loaded, to profile the server meanwhile.

use std::time::Instant;

use tierdeck_tests::aws::{query, FaultProxy};
use tierdeck_tests::git::{SpecRepo, SEJIN};
use tierdeck_tests::{approve_and_apply, wait_for, Api, Moto, TestApp, NO_APPROVAL_FLOOR};

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

/// Plans `env`'s newest change `n` times, AWS at `aws`, reported as `label`; returns the panel (still running) and
/// the change.
async fn plans(aws: &str, repo: &SpecRepo, env: &str, label: &str, n: usize) -> (TestApp, i64) {
    let app = TestApp::watching(&repo.url(), 3600, Some(aws)).await;
    let api = app.api_as("vic", "viewer").await;
    let change = wait_for("the change", 60, || async {
        api.changes(env).await.into_iter().next()
    })
    .await;
    let id = change["id"].as_i64().unwrap();
    timed_plans(&api, label, id, n).await;
    (app, id)
}

/// Plans change `id` `n` times once its background plan is made, and reports the timings.
async fn timed_plans(api: &Api, env: &str, id: i64, n: usize) {
    // The background plan first, so that the timed plans run alone.
    api.planned(id).await;
    let path = format!("/api/v1/changes/{id}/plan");
    let (mut total, mut read) = (Vec::new(), Vec::new());
    let (mut ops, mut calls) = (0, 0);
    for _ in 0..n {
        // "Plan again" is limited per change and per person (engine/src/auth/limits.rs): wait
        // out a 429 as its Retry-After says, untimed, and time the plan that is let through.
        let (start, res) = loop {
            let start = Instant::now();
            let res = api.post(&path).await;
            if res.status() != 429 {
                break (start, res);
            }
            let wait: u64 = res
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .unwrap_or(1);
            tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
        };
        assert_eq!(res.status(), 200);
        let v: serde_json::Value = res.json().await.unwrap();
        total.push(start.elapsed().as_secs_f64() * 1000.0);
        read.push(v["read_ms"].as_f64().unwrap());
        ops = v["operations"].as_array().unwrap().len();
        calls = v["aws_calls"].as_u64().unwrap();
    }
    report(
        &format!("{env}: plan round trip ({ops} operations, {calls} AWS calls)"),
        total,
    );
    report(&format!("{env}: live state read inside it"), read);
}

/// The 200 groups applied (400 policies and alarms, 200 scheduled actions), then a one-field
/// change planned through the tests' AWS proxy, which pages listings by 100 as AWS does.
async fn large_applied(moto: &Moto, large: &SpecRepo) {
    let proxy = FaultProxy::start(&moto.url).await;
    proxy.pages_of(100);
    let app =
        TestApp::watching_with(&large.url(), 3600, Some(&proxy.url), &[NO_APPROVAL_FLOOR]).await;
    let olga = app.api_as("olga", "operator").await;
    let ann = app.api_as("ann", "approver").await;
    let id = wait_for("the change", 60, || async {
        olga.changes("large").await.into_iter().next()
    })
    .await["id"]
        .as_i64()
        .unwrap();
    let started = Instant::now();
    let d = approve_and_apply(&[&ann], &olga, id).await;
    assert_eq!(d["status"], "applied", "{}", d["apply"]["error"]);
    println!(
        "large: first apply ({} steps) in {:.1} s",
        d["apply"]["steps"].as_array().map_or(0, Vec::len),
        started.elapsed().as_secs_f64()
    );
    let commit = large.commit(
        ("Bench", "bench@example.com"),
        "Let one group reach 9",
        large.replace_in(
            "environments/large/autoscaling.yaml",
            "name: large-000\n    tier: web\n    min: 1\n    max: 8",
            "name: large-000\n    tier: web\n    min: 1\n    max: 9",
        ),
    );
    assert_eq!(olga.post("/api/v1/sync").await.status(), 200);
    let id = olga.change_for("large", &commit).await["id"]
        .as_i64()
        .unwrap();
    timed_plans(&olga, "large, applied, AWS-paged", id, 10).await;
    if let Some(mib) = app.pid().and_then(peak_rss_mib) {
        println!("large: the server's peak resident memory {mib:.1} MiB");
    }
    drop(app);
    // The same change from a fresh panel against moto itself (each listing in one answer).
    let (_app, _) = plans(&moto.url, large, "large", "large, applied, moto", 10).await;
}

/// The peak resident memory of process `pid` so far, in MiB (Linux's `VmHWM`).
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Requests per second of `path` over `secs` seconds with `conns` connections, each a client
/// signed in as the same viewer; panics on any answer but 200.
async fn throughput(client: &tierdeck_tests::Client, path: &str, conns: usize, secs: u64) -> f64 {
    let url = client.url(path);
    let until = Instant::now() + std::time::Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let http = client.http.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < until {
                let res = http.get(&url).send().await.expect("GET");
                assert_eq!(res.status(), 200, "{url}");
                res.bytes().await.expect("body");
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / secs as f64
}

async fn ssr(app: &TestApp, change: i64) {
    let client = app.login_new("reader", "viewer").await;
    // `TIERDECK_BENCH_SSR_SECS` runs each longer (to profile the server meanwhile).
    let secs = std::env::var("TIERDECK_BENCH_SSR_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let healthz = throughput(&client, "/healthz", 32, secs).await;
    // `TIERDECK_BENCH_SSR_PATHS` (comma-separated) measures other pages instead.
    let paths: Vec<String> = match std::env::var("TIERDECK_BENCH_SSR_PATHS") {
        Ok(list) => list.split(',').map(str::to_owned).collect(),
        Err(_) => vec!["/".to_owned(), format!("/changes/{change}")],
    };
    for path in paths {
        let rps = throughput(&client, &path, 32, secs).await;
        let page = client
            .http
            .get(client.url(&path))
            .send()
            .await
            .expect("GET");
        let bytes = page.bytes().await.expect("body").len();
        println!(
            "SSR {path}: {rps:.0} requests/s at 32 connections, {:.0} % of /healthz ({healthz:.0}/s); page {:.1} KB",
            100.0 * rps / healthz,
            bytes as f64 / 1024.0
        );
    }
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
        (d["status"] == "applied").then_some(())
    })
    .await;
    start.elapsed().as_secs_f64() * 1000.0
}

async fn applies(moto: &Moto, repo: &SpecRepo) {
    let app =
        TestApp::watching_with(&repo.url(), 3600, Some(&moto.url), &[NO_APPROVAL_FLOOR]).await;
    let api = app.api_as("olga", "operator").await;
    let id = api.change_for("prod", &repo.head()).await["id"].clone();
    let d = api.planned(&id).await;
    let n = d["plan"]["operations"].as_array().unwrap().len();
    println!(
        "prod: first full apply ({n} operations): {:.0} ms",
        timed_apply(&api, &id).await
    );
    let commit = repo.raise_was_peak(SEJIN);
    assert_eq!(api.post("/api/v1/sync").await.status(), 200);
    let id = api.change_for("prod", &commit).await["id"].clone();
    let d = api.planned(&id).await;
    let n = d["plan"]["operations"].as_array().unwrap().len();
    println!(
        "prod: one-field change apply ({n} operation): {:.0} ms",
        timed_apply(&api, &id).await
    );
}

/// Prod planned with its subnets and network ACLs, then from a commit without them: what the
/// network layer adds to a plan (two describe calls, the entry ordering).
async fn with_and_without_acls(moto: &Moto) {
    let with = SpecRepo::petclinic_ungated();
    let (app, _) = plans(&moto.url, &with, "prod", "prod with network ACLs", 20).await;
    drop(app);
    let without = SpecRepo::petclinic_ungated();
    without.commit(SEJIN, "Leave the network layer out", |work| {
        let prod = work.join("environments/prod");
        std::fs::remove_file(prod.join("network.yaml")).unwrap();
        // The groups' places name subnet tiers of that file.
        let security = prod.join("security.yaml");
        let text = std::fs::read_to_string(&security).unwrap();
        let text: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("subnets:"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&security, text).unwrap();
    });
    let (app, _) = plans(&moto.url, &without, "prod", "prod without network ACLs", 20).await;
    drop(app);
}

/// An environment `large` of `groups` groups of min `min`.
fn synthetic_repo(groups: usize, min: u32) -> SpecRepo {
    let repo = SpecRepo::petclinic();
    repo.commit(("Bench", "bench@example.com"), "A large environment", |work| {
        let dir = work.join("environments/large");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("environment.yaml"),
            format!("environment:\n  name: large\n  region: ap-northeast-2\n  guardrails: {{ min_instances: {min} }}\n"),
        )
        .unwrap();
        let mut text = String::from("autoscaling_groups:\n");
        for i in 0..groups {
            text.push_str(&format!(
                "  - name: large-{i:03}\n    tier: web\n    min: {min}\n    max: 8\n    cpu_scaling: {{ scale_out_above: 50, scale_in_below: 30 }}\n    schedule:\n      - {{ name: large-{i:03}-night, cron: \"0 0 * * *\", timezone: Asia/Seoul, min: 2 }}\n"
            ));
        }
        std::fs::write(dir.join("autoscaling.yaml"), text).unwrap();
    });
    repo
}

#[tokio::main]
async fn main() {
    // `cargo bench -p tierdeck-tests --bench plan -- ssr` runs the named parts only.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let runs = |part: &str| only.is_empty() || only.iter().any(|o| o == part);
    let moto = Moto::start().await;
    let repo = SpecRepo::petclinic_ungated();
    moto.sandbox(&repo.work).await;
    if runs("prod") || runs("ssr") {
        let (app, change) = plans(&moto.url, &repo, "prod", "prod", 20).await;
        if runs("ssr") {
            ssr(&app, change).await;
        }
    }
    if runs("prod") {
        let floor: Vec<f64> = {
            let mut v = Vec::new();
            for _ in 0..20 {
                v.push(describes_in_turn(&moto).await);
            }
            v
        };
        report("prod: the same describe calls in turn, summed", floor);
    }
    if runs("nacl") {
        with_and_without_acls(&moto).await;
    }
    if runs("apply") {
        applies(&moto, &repo).await;
    }
    if runs("large") {
        let large = synthetic_repo(200, 2);
        let started = Instant::now();
        moto.sandbox(&large.work).await;
        println!(
            "sandbox of 200 groups created in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let (app, _) = plans(&moto.url, &large, "large", "large", 10).await;
        drop(app);
        // Applied with min 1: moto refuses to launch hundreds more instances.
        large_applied(&moto, &synthetic_repo(200, 1)).await;
    }
    if runs("terraform") {
        let n = std::env::var("TIERDECK_BENCH_TF_RUNS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10);
        terraform(n).await;
    }
}

/// Where `terraform` and the AWS provider are: the binary (`TIERDECK_TERRAFORM`, or
/// `terraform` on `PATH`) and the plugin folder holding `hashicorp/aws` 5.100.0 in the
/// unpacked mirror layout (`TIERDECK_TF_PLUGINS`, or `/opt/tf-plugins`); why not otherwise.
fn terraform_tools() -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
    use std::path::PathBuf;
    let bin = match std::env::var_os("TIERDECK_TERRAFORM") {
        Some(p) => Some(PathBuf::from(p)),
        None => std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("terraform"))
                .find(|p| p.is_file())
        }),
    }
    .filter(|p| p.is_file())
    .ok_or("no terraform binary on PATH (nor TIERDECK_TERRAFORM)")?;
    let plugins = std::env::var_os("TIERDECK_TF_PLUGINS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/tf-plugins"));
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let provider = plugins.join(format!(
        "registry.terraform.io/hashicorp/aws/{TF_AWS_PROVIDER}/{}_{arch}/terraform-provider-aws_v{TF_AWS_PROVIDER}_x5",
        std::env::consts::OS
    ));
    if !provider.is_file() {
        return Err(format!(
            "no AWS provider {TF_AWS_PROVIDER} under {} (nor TIERDECK_TF_PLUGINS)",
            plugins.display()
        ));
    }
    Ok((bin, plugins))
}

/// The AWS provider version `tests/benches/terraform/main.tf` pins.
const TF_AWS_PROVIDER: &str = "5.100.0";

/// Terraform in a working folder, offline: its plugins from a local folder, no checkpoint, no
/// prompts, fake credentials, no shared AWS config or instance metadata, and every
/// non-loopback HTTP(S) request sent to a closed loopback port (Go's HTTP client never proxies
/// loopback addresses, so the emulator and the call counter are reached directly).
struct Terraform {
    bin: std::path::PathBuf,
    dir: tempfile::TempDir,
    ami: String,
}

impl Terraform {
    fn command(&self, endpoint: &str, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.bin);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            let upper = k.to_ascii_uppercase();
            if upper.starts_with("TF_") || upper.starts_with("AWS_") || upper.ends_with("_PROXY") {
                cmd.env_remove(&k);
            }
        }
        cmd.current_dir(self.dir.path())
            .args(args)
            .env("TF_CLI_CONFIG_FILE", self.dir.path().join("cli.tfrc"))
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("TF_VAR_endpoint", endpoint)
            .env("TF_VAR_ami", &self.ami)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("NO_PROXY", "")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// Runs `terraform ARGS` with AWS at `endpoint`; its exit code and standard output.
    /// Panics when it fails (exit code 1, or any but those in `ok`).
    async fn run(&self, endpoint: &str, args: &[&str], ok: &[i32]) -> (i32, String) {
        let out = self
            .command(endpoint, args)
            .output()
            .await
            .expect("running terraform");
        let code = out.status.code().unwrap_or(-1);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            code == 0 || ok.contains(&code),
            "terraform {}: exit {code}\n{stdout}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        (code, stdout)
    }
}

/// `calls` as `total (service:Action n, …)`, the most frequent first.
fn calls_text(calls: &std::collections::BTreeMap<String, u32>) -> String {
    let mut by: Vec<(&String, &u32)> = calls.iter().collect();
    by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let each: Vec<String> = by.iter().map(|(k, n)| format!("{k} {n}")).collect();
    format!(
        "{} ({})",
        calls.values().sum::<u32>(),
        if each.is_empty() {
            "none".to_owned()
        } else {
            each.join(", ")
        }
    )
}

/// `examples/petclinic`'s prod as `tests/benches/terraform/main.tf` writes it, applied by
/// `terraform apply` to an emulator of its own (the shared one holds the sandbox's resources
/// of the same names), then `runs` timed `terraform plan`s with and without refreshing, each
/// kind's AWS calls counted in one more plan through a counting proxy, and tierdeck's plan of
/// the same state beside them. Skipped, in one line, without terraform or the provider.
async fn terraform(runs: usize) {
    let (bin, plugins) = match terraform_tools() {
        Ok(t) => t,
        Err(why) => {
            println!("terraform: skipped: {why}");
            return;
        }
    };
    let moto = Moto::start().await;
    let images = query(&moto.url, "ec2", "DescribeImages", &[("Owner.1", "amazon")]).await;
    let ami = tierdeck_tests::aws::tag_value(&images, "imageId");
    let dir = tempfile::tempdir().unwrap();
    let config = tierdeck_tests::workspace().join("tests/benches/terraform/main.tf");
    std::fs::copy(&config, dir.path().join("main.tf")).expect("tests/benches/terraform/main.tf");
    std::fs::write(dir.path().join("cli.tfrc"), "disable_checkpoint = true\n").unwrap();
    let tf = Terraform { bin, dir, ami };
    let plugin_dir = format!("-plugin-dir={}", plugins.display());
    tf.run(
        &moto.url,
        &["init", "-input=false", "-no-color", &plugin_dir],
        &[],
    )
    .await;
    let started = Instant::now();
    tf.run(
        &moto.url,
        &[
            "apply",
            "-auto-approve",
            "-input=false",
            "-lock=false",
            "-no-color",
        ],
        &[],
    )
    .await;
    let applied = started.elapsed().as_secs_f64();
    let (_, list) = tf.run(&moto.url, &["state", "list"], &[]).await;
    let resources = list.lines().filter(|l| !l.trim().is_empty()).count();
    println!("terraform: apply of {resources} resources on moto in {applied:.1} s");

    let counter = FaultProxy::start(&moto.url).await;
    for refresh in ["-refresh=true", "-refresh=false"] {
        let args = [
            "plan",
            refresh,
            "-lock=false",
            "-input=false",
            "-no-color",
            "-detailed-exitcode",
        ];
        // Exit code 2: the plan has changes; 0: none.
        counter.take_calls();
        let (code, _) = tf.run(&counter.url, &args, &[2]).await;
        let calls = counter.take_calls();
        let mut ms = Vec::new();
        let mut changes = code == 2;
        for _ in 0..runs {
            let start = Instant::now();
            let (code, _) = tf.run(&moto.url, &args, &[2]).await;
            ms.push(start.elapsed().as_secs_f64() * 1000.0);
            changes |= code == 2;
        }
        let total: u32 = calls.values().sum();
        report(
            &format!(
                "terraform: plan {refresh} ({resources} resources, {}, {total} AWS calls)",
                if changes {
                    "with changes"
                } else {
                    "no changes"
                }
            ),
            ms,
        );
        println!(
            "terraform: AWS calls of one plan {refresh}: {}",
            calls_text(&calls)
        );
    }
    drop(counter);
    // tierdeck's plan of the state terraform applied: the same resources read.
    let repo = SpecRepo::petclinic_ungated();
    let (_app, _) = plans(&moto.url, &repo, "prod", "prod as terraform applied it", 20).await;
}
