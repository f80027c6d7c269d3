//! The README's story, as written, against the demo's own set-up: `scripts/demo-run` (what
//! `scripts/demo` runs once it has built) with its emulator, Prometheus, node_exporter, spec
//! repository (`scripts/demo-specs`), users (`scripts/demo-users`) and demo team
//! (`demo-team`), on free ports in a temporary folder; then, through the API as the demo's
//! people with the printed password, what the README tells a new user to try. Twice: a second
//! run reuses the database and the spec repository with a new emulator, as the README says.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tierdeck_tests::openapi::OpenApi;
use tierdeck_tests::{binary, free_port, wait_for, workspace, Client};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The banner's line that says the demo is ready, after the demo team's work.
const READY: &str = "Sign in with any of these";

/// A running `scripts/demo-run`, in its own process group.
struct Demo {
    child: Child,
    pid: u32,
    output: Arc<Mutex<String>>,
    base: String,
    ports: Ports,
}

#[derive(Clone, Copy)]
struct Ports {
    panel: u16,
    moto: u16,
    /// demo-aws, the proxy in front of the emulator the panel reaches.
    aws: u16,
    prometheus: u16,
    node: u16,
}

impl Ports {
    fn free() -> Ports {
        Ports {
            panel: free_port().unwrap(),
            moto: free_port().unwrap(),
            aws: free_port().unwrap(),
            prometheus: free_port().unwrap(),
            node: free_port().unwrap(),
        }
    }
}

fn signal(sig: &str, target: &str) {
    let _ = std::process::Command::new("kill")
        .args([sig, "--", target])
        .stderr(Stdio::null())
        .status();
}

impl Demo {
    /// Runs the demo on `ports` with its folder `dir` (the README's `.demo`) and waits for its
    /// banner.
    async fn start(dir: &Path, ports: Ports) -> Demo {
        // The binaries scripts/demo builds, where it builds them.
        let target = binary()
            .parent()
            .and_then(Path::parent)
            .expect("the build folder")
            .to_path_buf();
        // As a terminal starts it: with Ctrl-C's signal at its default. A process started in
        // the background by a shell without job control (a CI step, `nohup … &`) inherits
        // SIGINT ignored, and bash cannot trap a signal ignored when it started, so the demo
        // would never see the Ctrl-C this test sends (coreutils' env resets it).
        let mut cmd = Command::new("env");
        cmd.arg("--default-signal=INT")
            .arg(workspace().join("scripts/demo-run"));
        for (k, _) in std::env::vars() {
            if k.starts_with("TIERDECK_") || k.starts_with("AWS_") || k.starts_with("GIT_") {
                cmd.env_remove(k);
            }
        }
        if let Some(moto) = std::env::var_os("TIERDECK_MOTO") {
            cmd.env("TIERDECK_MOTO", moto);
        }
        if let Some(venv) = std::env::var_os("TIERDECK_VENV") {
            cmd.env("TIERDECK_VENV", venv);
        }
        cmd.env("CARGO_TARGET_DIR", &target)
            .env("TIERDECK_DEMO_DIR", dir)
            .env("TIERDECK_DEMO_PORT", ports.panel.to_string())
            .env("TIERDECK_DEMO_MOTO_PORT", ports.moto.to_string())
            .env("TIERDECK_DEMO_AWS_PORT", ports.aws.to_string())
            .env(
                "TIERDECK_DEMO_PROMETHEUS_PORT",
                ports.prometheus.to_string(),
            )
            .env("TIERDECK_DEMO_NODE_EXPORTER_PORT", ports.node.to_string())
            // The panel's log at warn: the demo's own lines stay readable in a failure.
            .env("TIERDECK_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().expect("starting scripts/demo-run");
        let pid = child.id().expect("a pid");
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let kept = output.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut kept = kept.lock().unwrap();
                    if kept.len() < 1 << 20 {
                        kept.push_str(&line);
                        kept.push('\n');
                    }
                }
            });
        }
        let mut demo = Demo {
            child,
            pid,
            output,
            base: format!("http://127.0.0.1:{}", ports.panel),
            ports,
        };
        let started = std::time::Instant::now();
        while !demo.output().contains(READY) {
            if let Ok(Some(status)) = demo.child.try_wait() {
                panic!("scripts/demo-run ended ({status}):\n{}", demo.output());
            }
            assert!(
                started.elapsed() < Duration::from_secs(400),
                "scripts/demo-run printed no banner within 400 s:\n{}",
                demo.output()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let output = demo.output();
        let team = output
            .rsplit("the demo team at work")
            .next()
            .and_then(|t| t.split("tierdeck is listening").next())
            .unwrap_or_default();
        println!(
            "the demo was ready in {:.1} s; the demo team{team}",
            started.elapsed().as_secs_f64()
        );
        demo
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Ctrl-C, as the README says: everything the demo started ends.
    async fn stop(mut self) {
        signal("-INT", &self.pid.to_string());
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the demo did not end on Ctrl-C:\n{}", self.output()))
            .unwrap();
        let ports = self.ports;
        for (what, port) in [
            ("the panel", ports.panel),
            ("the emulator", ports.moto),
            ("the emulator's proxy", ports.aws),
            ("Prometheus", ports.prometheus),
            ("the node_exporter", ports.node),
        ] {
            wait_for(&format!("{what} to stop"), 20, || async move {
                std::net::TcpStream::connect(("127.0.0.1", port))
                    .is_err()
                    .then_some(())
            })
            .await;
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        // A failed test must not leave the emulator, Prometheus or the panel behind.
        signal("-TERM", &format!("-{}", self.pid));
    }
}

/// A demo user signed in with the banner's password; JSON requests as the browser's page would
/// send them (with the panel's Origin).
struct Person {
    name: String,
    c: Client,
    api: std::sync::Arc<OpenApi>,
}

/// Every answer the story reads must be what docs/openapi.json says it is.
fn fits(api: &OpenApi, method: &str, path: &str, status: u16, value: &Value) {
    let errors = api.check(method, path, status, value);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

impl Person {
    async fn sign_in(base: &str, name: &str, password: &str) -> Person {
        let c = Client::new(base);
        let res = c.login(name, password).await;
        assert_eq!(
            res.status(),
            303,
            "{name} signs in with the printed password"
        );
        Person {
            name: name.to_owned(),
            c,
            api: std::sync::Arc::new(OpenApi::load()),
        }
    }

    async fn get(&self, path: &str) -> Value {
        let res = self.c.get(path).await;
        assert_eq!(res.status(), 200, "GET {path} as {}", self.name);
        let value = res.json().await.unwrap();
        fits(&self.api, "get", path, 200, &value);
        value
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .c
            .http
            .post(self.c.url(path))
            .header("Origin", &self.c.base)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let value = res.json().await.unwrap_or(Value::Null);
        fits(&self.api, "post", path, status, &value);
        (status, value)
    }

    /// The change once its plan against the emulator is made.
    async fn planned(&self, id: i64) -> Value {
        let path = format!("/api/v1/changes/{id}");
        wait_for(&format!("the plan of change {id}"), 60, || async {
            let d = self.get(&path).await;
            (d["plan"]["state"] == "planned").then_some(d)
        })
        .await
    }

    async fn approve(&self, id: i64) {
        let (status, body) = self
            .post(&format!("/api/v1/changes/{id}/approve"), json!({}))
            .await;
        assert_eq!(status, 200, "{} approves change {id}: {body:#}", self.name);
    }

    /// Applies as the README says: inside prod's change window a plain apply, outside it an
    /// audited emergency with a reason. Returns whether it was an emergency.
    async fn apply(&self, id: i64) -> bool {
        let path = format!("/api/v1/changes/{id}/apply");
        let (status, body) = self.post(&path, json!({})).await;
        let emergency = status == 409;
        if emergency {
            let why = body["error"]["message"].as_str().unwrap_or_default();
            assert!(
                why.contains("outside the change windows of prod")
                    && why.contains("as an emergency, with a reason"),
                "only the change window stands in the way: {body:#}"
            );
            let (status, body) = self
                .post(
                    &path,
                    json!({ "emergency": true, "reason": "trying the README's story" }),
                )
                .await;
            assert_eq!(status, 202, "{body:#}");
        } else {
            assert_eq!(status, 202, "{body:#}");
        }
        let d = wait_for("the apply to end", 120, || async {
            let d = self.get(&format!("/api/v1/changes/{id}")).await;
            (d["status"] != "applying" && d["apply"]["status"] != "applying").then_some(d)
        })
        .await;
        assert_eq!(d["status"], "applied", "{:#}", d["apply"]);
        emergency
    }
}

/// Runs `git ARGS` in the demo's working copy as its own settings say (no identity of ours).
fn git(work: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(work)
        .env_remove("GIT_AUTHOR_NAME")
        .env_remove("GIT_AUTHOR_EMAIL")
        .env_remove("GIT_COMMITTER_NAME")
        .env_remove("GIT_COMMITTER_EMAIL")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Edits one line of a working copy's file, commits it with `message` and pushes; returns the
/// commit.
fn edit_and_push(work: &Path, file: &str, from: &str, to: &str, message: &str) -> String {
    let path = work.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches(from).count(), 1, "{file} holds `{from}` once");
    std::fs::write(&path, text.replace(from, to)).unwrap();
    git(
        work,
        &["-c", "commit.gpgsign=false", "commit", "-qam", message],
    );
    git(work, &["push", "-q", "origin", "main"]);
    git(work, &["rev-parse", "HEAD"]).trim().to_owned()
}

/// The change recorded for `commit` in prod, brought by the push's webhook (the panel polls
/// only every 30 s).
async fn change_for(p: &Person, commit: &str) -> Value {
    wait_for("the pushed change, through the webhook", 15, || async {
        p.get("/api/v1/changes?env=prod")
            .await
            .as_array()
            .and_then(|c| c.iter().find(|c| c["commit"]["sha"] == commit).cloned())
    })
    .await
}

/// The banner's users: (name, role) per line under "Sign in with any of these", and the
/// password it names.
fn banner(output: &str) -> (Vec<(String, String)>, String) {
    let after = output.rsplit(READY).next().unwrap();
    let password = after
        .split("(password: ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("the banner names the password")
        .to_owned();
    let users = after
        .lines()
        .skip(1)
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_owned(), w.next()?.to_owned()))
        })
        .collect();
    (users, password)
}

fn actors(events: &Value) -> Vec<String> {
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn the_readmes_demo_story_works_as_written_on_a_first_and_a_second_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().join("demo");
    let ports = Ports::free();
    let demo = Demo::start(&dir, ports).await;

    // The README names the demo's people, their roles and the password the banner prints.
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let quick = readme.split("## Running it").next().unwrap();
    let (users, password) = banner(&demo.output());
    assert!(
        quick.contains(&format!("`{password}`")),
        "the README names the password"
    );
    assert_eq!(users.len(), 6, "{users:?}");
    for (name, role) in &users {
        assert!(
            quick.contains(&format!("`{name}`")),
            "the README names {name}"
        );
        let p = Person::sign_in(&demo.base, name, &password).await;
        assert_eq!(p.get("/api/v1/me").await["role"], role.as_str());
    }
    let sign_in = |name: &'static str| Person::sign_in(&demo.base, name, &password);
    let (sejin, seung, jeongho) = (
        sign_in("sejin").await,
        sign_in("seung").await,
        sign_in("jeongho").await,
    );

    // Prod and staging were applied once at start, by the demo team, and the audit says so:
    // approved by approvers who wrote none of it (Sejin wrote the first commit), applied by
    // the operator.
    let envs = jeongho.get("/api/v1/environments").await;
    for e in envs.as_array().unwrap() {
        assert!(e["last_applied_commit"].is_string(), "{e:#}");
        assert_eq!(e["open_changes"], 0, "{e:#}");
    }
    let approved = jeongho.get("/api/v1/audit?action=change.approved").await;
    let mut approvers = actors(&approved);
    approvers.sort();
    assert_eq!(approvers, ["minji", "minji", "seung"], "{approved:#}");
    for e in approved["events"].as_array().unwrap() {
        assert!(
            e["detail"]
                .to_string()
                .contains("The demo's first apply of"),
            "{e:#}"
        );
    }
    let started = jeongho
        .get("/api/v1/audit?action=change.apply_started")
        .await;
    assert_eq!(actors(&started), ["jeongho", "jeongho"], "{started:#}");

    // "Try raising was-peak's max in .demo/specs-work/environments/prod/autoscaling.yaml,
    // commit and push."
    let work = dir.join("specs-work");
    let commit = edit_and_push(
        &work,
        "environments/prod/autoscaling.yaml",
        "timezone: Asia/Seoul, min: 5, max: 7 }",
        "timezone: Asia/Seoul, min: 5, max: 8 }",
        "Let the was evening peak reach 8",
    );
    // "The change appears with its diffs, its plan against the emulator and the schedule
    // before and after."
    let id = change_for(&sejin, &commit).await["id"].as_i64().unwrap();
    let d = sejin.planned(id).await;
    let edits: Vec<String> = d["semantic_diff"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}: {} → {}",
                e["path"].as_str().unwrap(),
                e["before"].as_str().unwrap(),
                e["after"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        edits,
        ["autoscaling_groups[petclinic-prod-was].schedule[was-peak].max: 7 → 8"],
        "the one-line diff"
    );
    let files = d["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{files:#?}");
    assert_eq!(
        (
            &files[0]["path"],
            &files[0]["additions"],
            &files[0]["deletions"]
        ),
        (
            &json!("environments/prod/autoscaling.yaml"),
            &json!(1),
            &json!(1)
        )
    );
    assert_eq!(
        d["authors"],
        json!([{ "name": "Hong Jeongho", "email": "jeongho.hong@petclinic.example" }]),
        "the working copy commits as the demo's operator"
    );
    let ops = d["plan"]["operations"].as_array().unwrap();
    assert_eq!(
        ops.len(),
        1,
        "the emulator holds the applied spec: {ops:#?}"
    );
    assert_eq!(
        ops[0]["aws_call"],
        "autoscaling:PutScheduledUpdateGroupAction"
    );
    assert!(
        d["schedule"]["before"].is_object() && d["schedule"]["after"].is_object(),
        "the schedule before (the applied spec) and after: {:#}",
        d["schedule"]
    );
    // "Two approvers approve it and the operator applies it."
    sejin.approve(id).await;
    seung.approve(id).await;
    let emergency = jeongho.apply(id).await;
    let d = jeongho.get(&format!("/api/v1/changes/{id}")).await;
    assert_eq!(
        d["watch"]["state"], "watching",
        "the watch after the apply: {:#}",
        d["watch"]
    );
    assert_eq!(d["watch"]["minutes"], 15);
    let audit = jeongho
        .get("/api/v1/audit?env=prod&action=change.emergency_apply")
        .await;
    let emergencies = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"].as_str() == Some(id.to_string().as_str()))
        .count();
    assert_eq!(emergencies, usize::from(emergency), "{audit:#}");

    // Every read of the API answers as docs/openapi.json says, on the demo's own data.
    let admin = Person::sign_in(&demo.base, "admin", &password).await;
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace().join("docs/openapi.json")).unwrap(),
    )
    .unwrap();
    let mut read = 0;
    for (template, ops) in doc["paths"].as_object().unwrap() {
        let Some(op) = ops.get("get") else { continue };
        let json_answer = op["responses"]["200"]["content"]
            .as_object()
            .is_some_and(|c| c.contains_key("application/json"));
        if !json_answer {
            continue;
        }
        let path = format!(
            "/api/v1{}",
            template
                .replace("{env}", "prod")
                .replace("{id}", &id.to_string())
        );
        let query = if template == "/audit/export" {
            "?format=json"
        } else {
            ""
        };
        admin.get(&format!("{path}{query}")).await;
        read += 1;
    }
    assert!(read >= 15, "{read} reads");

    // Left open for the second run: a change with one of its two approvals.
    let open = edit_and_push(
        &work,
        "environments/prod/autoscaling.yaml",
        "timezone: Asia/Seoul, min: 4, max: 6 }",
        "timezone: Asia/Seoul, min: 4, max: 7 }",
        "Let the web evening peak reach 7",
    );
    let open = change_for(&sejin, &open).await["id"].as_i64().unwrap();
    sejin.planned(open).await;
    sejin.approve(open).await;
    demo.stop().await;

    // "A second run reuses the build, the spec repository and the database in .demo/": with a
    // new emulator, which the demo team brings back to the applied commits, and the open change
    // planned again against it.
    let demo = Demo::start(&dir, ports).await;
    let output = demo.output();
    let second = output.rsplit("the demo team at work").next().unwrap();
    for line in [
        "prod: reconcile #",
        "staging: reconcile #",
        &format!("prod: change #{open} planned again"),
    ] {
        assert!(second.contains(line), "{line}: {second}");
    }
    let sejin = Person::sign_in(&demo.base, "sejin", &password).await;
    let seung = Person::sign_in(&demo.base, "seung", &password).await;
    let jeongho = Person::sign_in(&demo.base, "jeongho", &password).await;
    let d = sejin.planned(open).await;
    let ops = d["plan"]["operations"].as_array().unwrap();
    assert_eq!(ops.len(), 1, "only its own edit is left to do: {ops:#?}");
    // Approvals from now on hold up to the apply.
    if d["approvals"]["counted"] == 0 {
        sejin.approve(open).await;
    }
    seung.approve(open).await;
    jeongho.apply(open).await;
    let reconciled = jeongho
        .get("/api/v1/audit?action=change.reconcile_created")
        .await;
    assert_eq!(
        actors(&reconciled),
        ["jeongho", "jeongho"],
        "{reconciled:#}"
    );
    demo.stop().await;

    // The demo's panel moved to PostgreSQL: every table's rows, the same chain head.
    let from = format!("sqlite://{}", dir.join("tierdeck.sqlite").display());
    let to = tierdeck_tests::pg::server().new_database("demo_copied");
    let out = tierdeck_tests::cli_in(
        tmp.path(),
        &["db", "copy", "--from", &from, "--to", &to],
        None,
    )
    .await;
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("audit chain verified on the target: "),
        "{said}"
    );
    sqlx::any::install_default_drivers();
    use sqlx::Connection as _;
    let mut source = sqlx::AnyConnection::connect(&from).await.unwrap();
    let mut copied_tables = 0;
    for line in said.lines().filter(|l| l.ends_with(" rows")) {
        let mut words = line.split_whitespace();
        let (table, rows) = (words.next().unwrap(), words.next().unwrap());
        let there: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut source)
            .await
            .unwrap();
        assert_eq!(rows, there.to_string(), "{table}: {said}");
        let here = tierdeck_tests::pg::server()
            .psql("demo_copied", &format!("SELECT COUNT(*) FROM {table}"));
        assert_eq!(here.trim(), rows, "{table} on PostgreSQL");
        copied_tables += 1;
    }
    assert!(copied_tables >= 19, "{said}");
    eprintln!("the demo's database copied: {said}");
}
