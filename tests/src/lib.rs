//! The test harness: spawns the real `tierdeck` binary on port 0 with a fresh SQLite database
//! in a temporary folder, runs its command line against the same database, and signs in
//! through the real forms.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub mod aws;
pub mod cloudwatch;
pub mod demo;
pub mod git;
pub mod openapi;
pub mod pg;
pub mod prom;
pub mod shop;
pub mod snapshot;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The password every test user gets.
pub const PASSWORD: &str = "correct horse battery";

/// The webhook secret of [`TestApp::watching`].
pub const WEBHOOK_SECRET: &str = "s3cret-hook";

/// The workspace root (this crate's parent folder).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// The `tierdeck` binary built by `cargo xtask build`: `TIERDECK_BIN`, or beside this test's
/// own executable (`target/debug/deps/..` → `target/debug/tierdeck`).
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("TIERDECK_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable");
    let debug = exe.parent().and_then(Path::parent).expect("target/debug");
    let bin = debug.join("tierdeck");
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo xtask build`",
        bin.display()
    );
    bin
}

/// Copies a folder tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The built site (`pkg/`): `TIERDECK_SITE_ROOT`, or `site` beside the binary, where
/// `cargo xtask build` writes it.
pub fn site_root() -> PathBuf {
    let site = std::env::var_os("TIERDECK_SITE_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| binary().parent().expect("the binary's folder").join("site"));
    assert!(
        site.join("pkg").is_dir(),
        "{} has no pkg/: build the site first with `cargo xtask build`",
        site.display()
    );
    site
}

/// The settings of a panel watching `repo_url`: see [`TestApp::watching`].
pub fn watching_env(
    repo_url: &str,
    poll_secs: u64,
    aws_endpoint: Option<&str>,
    more: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut env = vec![
        ("TIERDECK_REPO__URL".to_owned(), repo_url.to_owned()),
        (
            "TIERDECK_REPO__POLL_INTERVAL_SECS".to_owned(),
            poll_secs.to_string(),
        ),
        (
            "TIERDECK_REPO__WEBHOOK_SECRET".to_owned(),
            WEBHOOK_SECRET.to_owned(),
        ),
    ];
    if let Some(url) = aws_endpoint {
        env.push(("TIERDECK_AWS__ENDPOINT_URL".to_owned(), url.to_owned()));
    }
    env.extend(more.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    env
}

/// A running panel with its own database.
pub struct TestApp {
    pub base: String,
    pub dir: tempfile::TempDir,
    child: Child,
    env: Vec<(String, String)>,
    output: Arc<Mutex<String>>,
}

/// A builder for unusual set-ups; `TestApp::spawn()` is the plain one.
#[derive(Default)]
pub struct Options {
    pub env: Vec<(String, String)>,
}

/// The panel setting that lets an environment need no approvals (the floor is 1 by default):
/// for tests of applying, not of its gates, with [`git::SpecRepo::petclinic_ungated`].
pub const NO_APPROVAL_FLOOR: (&str, &str) = ("TIERDECK_POLICY__MIN_APPROVALS", "0");

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(Options::default()).await
    }

    /// A panel watching `repo_url` (polling every `poll_secs`), with AWS at `aws_endpoint` (a
    /// closed loopback port when `None`) and the webhook secret `s3cret-hook`.
    pub async fn watching(repo_url: &str, poll_secs: u64, aws_endpoint: Option<&str>) -> TestApp {
        Self::watching_with(repo_url, poll_secs, aws_endpoint, &[]).await
    }

    /// [`TestApp::watching`] with more settings (`TIERDECK_…` variables).
    pub async fn watching_with(
        repo_url: &str,
        poll_secs: u64,
        aws_endpoint: Option<&str>,
        more: &[(&str, &str)],
    ) -> TestApp {
        let env = watching_env(repo_url, poll_secs, aws_endpoint, more);
        Self::spawn_with(Options { env }).await
    }

    /// [`TestApp::watching`] on the database and data folder in `dir` (made by a command run
    /// there first, see [`cli_with`]).
    pub async fn watching_in(
        dir: tempfile::TempDir,
        repo_url: &str,
        poll_secs: u64,
        aws_endpoint: Option<&str>,
    ) -> TestApp {
        let env = watching_env(repo_url, poll_secs, aws_endpoint, &[]);
        Self::start_in(dir, env).await
    }

    pub async fn spawn_with(options: Options) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, options.env).await
    }

    /// Kills the process at once (SIGKILL: no clean-up runs) and starts a new one on the same
    /// database and data folder.
    pub async fn kill_and_restart(mut self) -> TestApp {
        self.child.kill().await.expect("killing tierdeck");
        let TestApp { dir, env, .. } = self;
        Self::start_in(dir, env).await
    }

    async fn start_in(dir: tempfile::TempDir, env: Vec<(String, String)>) -> TestApp {
        let mut cmd = base_command(dir.path());
        cmd.arg("serve")
            .env("TIERDECK_SERVER__LISTEN", "127.0.0.1:0")
            .env("TIERDECK_SERVER__SITE_ROOT", site_root())
            // TIERDECK_TEST_LOG=info (or any filter) for more than warnings, with ECHO.
            .env(
                "TIERDECK_LOG",
                std::env::var("TIERDECK_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawning tierdeck serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix("tierdeck listening on ") {
                    return Ok(url.trim().to_owned());
                }
            }
            bail!("tierdeck serve exited before listening")
        })
        .await
        .expect("tierdeck serve did not start within 60 s")
        .expect("tierdeck serve output");
        // Keep draining stdout so the child never blocks on a full pipe, and keep its first
        // megabyte (the log) for tests that read it.
        let output = Arc::new(Mutex::new(String::new()));
        let kept = output.clone();
        // TIERDECK_TEST_ECHO=1 also shows the panel's log as it comes (when a test fails on
        // an answer whose cause only the log names).
        let echo = std::env::var_os("TIERDECK_TEST_ECHO").is_some();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if echo {
                    eprintln!("[panel] {line}");
                }
                let mut kept = kept.lock().unwrap();
                if kept.len() < 1 << 20 {
                    kept.push_str(&line);
                    kept.push('\n');
                }
            }
        });
        TestApp {
            base,
            dir,
            child,
            env,
            output,
        }
    }

    /// The value this app was started with for the variable `key`.
    pub fn env_value(&self, key: &str) -> Option<String> {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// What the process wrote to its standard output so far (its log at `warn`).
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("tierdeck.sqlite")
    }

    /// A connection of its own to this app's database, on the back end the tests run on.
    pub async fn db_connect(&self) -> sqlx::AnyConnection {
        use sqlx::Connection as _;
        sqlx::any::install_default_drivers();
        let url = if pg::in_use() {
            pg::database_for(self.dir.path())
        } else {
            format!("sqlite://{}", self.db_path().display())
        };
        sqlx::AnyConnection::connect(&url)
            .await
            .expect("connecting to the app's database")
    }

    /// Runs `tierdeck ARGS` against this app's database.
    pub async fn cli(&self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        // The app's own database settings (a shared database's URL) go with it.
        let db: Vec<(&str, &str)> = self
            .env
            .iter()
            .filter(|(k, _)| k.starts_with("TIERDECK_DATABASE__"))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        cli_with(self.dir.path(), args, stdin, &db).await
    }

    /// `tierdeck plan ENV` on this app's database with the spec repository at `repo_url` and
    /// AWS at `aws`: it reads the live state through the AWS SDK. Its standard output; panics
    /// when it fails.
    pub async fn cli_plan(&self, env: &str, repo_url: &str, aws: &str) -> String {
        let vars = [
            ("TIERDECK_REPO__URL", repo_url),
            ("TIERDECK_AWS__ENDPOINT_URL", aws),
        ];
        let out = cli_with(self.dir.path(), &["plan", env], None, &vars).await;
        let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
        assert!(
            out.status.success(),
            "tierdeck plan {env}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Creates a user with [`PASSWORD`] and the e-mail `NAME@example.com` through the command
    /// line.
    pub async fn add_user(&self, name: &str, role: &str) {
        self.add_user_with_email(name, role, &format!("{name}@example.com"))
            .await;
    }

    /// Creates a user with [`PASSWORD`] and this e-mail (a commit author's, say).
    pub async fn add_user_with_email(&self, name: &str, role: &str, email: &str) {
        self.add_user_as(name, role, Some(email)).await;
    }

    /// Creates a user with [`PASSWORD`] and an e-mail, or none.
    pub async fn add_user_as(&self, name: &str, role: &str, email: Option<&str>) {
        let email = email.map(|e| format!("--email={e}"));
        let mut args = vec!["user", "add", name, "--role", role];
        args.extend(email.as_deref());
        args.push("--password-stdin");
        let out = self.cli(&args, Some(PASSWORD)).await;
        assert!(
            out.status.success(),
            "user add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A browser-like client (cookies, no redirects followed) that sends this panel's Origin.
    pub fn client(&self) -> Client {
        Client::new(&self.base)
    }

    /// Creates a user with the role and signs them in.
    pub async fn login_new(&self, name: &str, role: &str) -> Client {
        self.add_user(name, role).await;
        self.login(name).await
    }

    /// Signs in through the form; panics unless it succeeds.
    pub async fn login(&self, name: &str) -> Client {
        let c = self.client();
        let res = c.login(name, PASSWORD).await;
        let status = res.status();
        if status != 303 {
            let body = res.text().await.unwrap_or_default();
            panic!(
                "login {name}: {status}: {body}\nthe panel's log:\n{}",
                self.output()
            );
        }
        c
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

fn base_command(dir: &Path) -> Command {
    let mut cmd = Command::new(binary());
    for (k, _) in std::env::vars() {
        if k.starts_with("TIERDECK_") {
            cmd.env_remove(k);
        }
    }
    cmd.current_dir(dir)
        .env("TIERDECK_DATABASE__PATH", dir.join("tierdeck.sqlite"));
    if pg::in_use() {
        cmd.env("TIERDECK_DATABASE__URL", pg::database_for(dir));
    }
    cmd
        // Fake credentials, no instance metadata, no shared config: tests talk to an emulator
        // on loopback or to nothing. By default AWS is a closed loopback port.
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("TIERDECK_AWS__ENDPOINT_URL", "http://127.0.0.1:9");
    cmd
}

/// Runs `tierdeck ARGS` with the database in `dir`.
pub async fn cli_in(dir: &Path, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    cli_with(dir, args, stdin, &[]).await
}

/// Runs `tierdeck ARGS` on the SQLite file in `dir`, whatever back end the tests run on.
pub async fn cli_sqlite_in(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = base_command(dir);
    cmd.env_remove("TIERDECK_DATABASE__URL")
        .args(args)
        .stdin(Stdio::null());
    cmd.output().await.expect("tierdeck output")
}

/// Runs `tierdeck ARGS` with the database in `dir` and more environment variables.
pub async fn cli_with(
    dir: &Path,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> std::process::Output {
    use tokio::io::AsyncWriteExt;
    let mut cmd = base_command(dir);
    cmd.envs(env.iter().copied());
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawning tierdeck");
    if let Some(input) = stdin {
        let mut s = child.stdin.take().expect("stdin");
        s.write_all(input.as_bytes()).await.expect("writing stdin");
        s.write_all(b"\n").await.expect("writing stdin");
    }
    child.wait_with_output().await.expect("tierdeck output")
}

/// An HTTP client with a cookie jar, for one person.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

impl Client {
    /// A browser-like client (cookies, no redirects followed) for the panel at `base`.
    pub fn new(base: &str) -> Client {
        Client {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http client"),
            base: base.to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("GET")
    }

    /// A form post from this panel's own page.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("Origin", &self.base)
            .form(form)
            .send()
            .await
            .expect("POST")
    }

    pub async fn login(&self, name: &str, password: &str) -> reqwest::Response {
        self.post_form(
            "/login",
            &[("username", name), ("password", password), ("next", "/")],
        )
        .await
    }

    /// Calls a server function the way the hydrated page does.
    pub async fn server_fn(&self, name: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/sfn/{name}")))
            .header("Origin", &self.base)
            .header("Accept", "application/json")
            .form(form)
            .send()
            .await
            .expect("server function")
    }

    /// The signed-in user's name per the API, or the status when not signed in.
    pub async fn whoami(&self) -> Result<String, u16> {
        let res = self.get("/api/v1/me").await;
        if res.status() != 200 {
            return Err(res.status().as_u16());
        }
        let v: serde_json::Value = res.json().await.expect("json");
        Ok(v["name"].as_str().unwrap_or_default().to_owned())
    }

    /// Audit events (newest first) as JSON values.
    pub async fn audit(&self, query: &str) -> Vec<serde_json::Value> {
        let res = self.get(&format!("/api/v1/audit?{query}")).await;
        assert_eq!(res.status(), 200, "GET /api/v1/audit?{query}");
        let v: serde_json::Value = res.json().await.expect("json");
        v["events"].as_array().cloned().unwrap_or_default()
    }
}

/// Actions of audit events, newest first.
pub fn actions(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A free loopback port (for the browser driver).
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(l.local_addr()?.port())
}

/// Page HTML without Leptos's hydration markers (`<!>` and `<!--…-->`), for text checks.
pub fn without_markers(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html.replace("<!>", "");
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        match rest[start..].find("-->") {
            Some(end) => rest = rest[start + end + 3..].to_owned(),
            None => {
                rest.clear();
            }
        }
    }
    out.push_str(&rest);
    out
}

/// Waits for change `id`'s plan, approves it as each of `approvers`, applies it as `operator`
/// as an emergency (so that prod's business hours do not matter) and waits for the apply to
/// end; returns the change as it ended.
pub async fn approve_and_apply(approvers: &[&Api], operator: &Api, id: i64) -> serde_json::Value {
    operator.planned(id).await;
    for a in approvers {
        let res = a
            .post_json(
                &format!("/api/v1/changes/{id}/approve"),
                serde_json::json!({}),
            )
            .await;
        assert_eq!(
            res.status(),
            200,
            "{}",
            res.text().await.unwrap_or_default()
        );
    }
    let res = operator
        .post_json(
            &format!("/api/v1/changes/{id}/apply"),
            serde_json::json!({ "emergency": true, "reason": "tested at any hour" }),
        )
        .await;
    assert_eq!(res.status(), 202);
    wait_for("the apply to end", 90, || async {
        let d = operator.get_json(&format!("/api/v1/changes/{id}")).await;
        (d["status"] != "applying" && d["apply"]["status"] != "applying").then_some(d)
    })
    .await
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `secs` seconds.
pub async fn wait_for<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl TestApp {
    /// Creates a user with the role and returns an API client holding a token of theirs.
    pub async fn api_as(&self, name: &str, role: &str) -> Api {
        self.add_user(name, role).await;
        self.api_for(name).await
    }

    /// Creates a user with the role and e-mail (a commit author's, say); returns their API.
    pub async fn api_with_email(&self, name: &str, role: &str, email: &str) -> Api {
        self.add_user_with_email(name, role, email).await;
        self.api_for(name).await
    }

    /// An API client with a new token of the existing user `name`.
    pub async fn api_for(&self, name: &str) -> Api {
        let out = self
            .cli(
                &["token", "create", "--user", name, "--label", "tests"],
                None,
            )
            .await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Api {
            http: reqwest::Client::new(),
            base: self.base.clone(),
            token: String::from_utf8(out.stdout).unwrap().trim().to_owned(),
        }
    }
}

/// An error answer's status code and message.
pub async fn error_of(res: reqwest::Response) -> (u16, String) {
    let code = res.status().as_u16();
    let v: serde_json::Value = res.json().await.unwrap_or_default();
    let message = v["error"]["message"].as_str().unwrap_or_default();
    (code, message.to_owned())
}

/// A script's view of the REST API: a bearer token, no cookies, no Origin.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Api {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET")
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let res = self.get(path).await;
        assert_eq!(res.status(), 200, "GET {path}");
        res.json().await.expect("json")
    }

    pub async fn post(&self, path: &str) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("POST")
    }

    /// The change's detail once its plan against AWS is made.
    pub async fn planned(&self, id: impl std::fmt::Display) -> serde_json::Value {
        let path = format!("/api/v1/changes/{id}");
        wait_for(&format!("the plan of change {id}"), 30, || async {
            let d = self.get_json(&path).await;
            (d["plan"]["state"] == "planned").then_some(d)
        })
        .await
    }

    /// The status of change `id`.
    pub async fn status_of(&self, id: i64) -> String {
        self.get_json(&format!("/api/v1/changes/{id}")).await["status"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// POSTs a JSON body.
    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("POST")
    }

    /// Changes of an environment, newest first.
    pub async fn changes(&self, env: &str) -> Vec<serde_json::Value> {
        self.get_json(&format!("/api/v1/changes?env={env}"))
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until `env` has a change for `commit`; returns it.
    pub async fn change_for(&self, env: &str, commit: &str) -> serde_json::Value {
        wait_for(&format!("a {env} change for {commit}"), 20, || async {
            self.changes(env)
                .await
                .into_iter()
                .find(|c| c["commit"]["sha"] == commit)
        })
        .await
    }

    pub async fn audit_actions(&self, query: &str) -> Vec<String> {
        let v = self.get_json(&format!("/api/v1/audit?{query}")).await;
        actions(
            v["events"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default(),
        )
    }
}

/// Waits until `url` answers a GET with a success status.
pub async fn wait_until_ok(what: &str, url: &str, secs: u64) {
    let probe = reqwest::Client::new();
    wait_for(what, secs, || async {
        probe
            .get(url)
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success())
            .map(|_| ())
    })
    .await;
}

/// The AWS emulator (`moto_server` from PyPI's moto), on a free loopback port, stopped on drop.
pub struct Moto {
    pub url: String,
    _child: Child,
}

impl Moto {
    pub async fn start() -> Moto {
        let bin = std::env::var_os("TIERDECK_MOTO")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var("HOME").unwrap_or_default())
                    .join(".cache/tierdeck/venv/bin/moto_server")
            });
        assert!(
            bin.exists(),
            "{} is missing: run scripts/setup --test (it installs moto[server])",
            bin.display()
        );
        let port = free_port().unwrap();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting moto_server");
        let url = format!("http://127.0.0.1:{port}");
        wait_until_ok(
            "moto_server to answer",
            &format!("{url}/moto-api/data.json"),
            30,
        )
        .await;
        Moto { url, _child: child }
    }

    /// An emulator holding the sandbox of `examples/petclinic`.
    pub async fn sandboxed() -> Moto {
        let moto = Moto::start().await;
        moto.sandbox(&workspace().join("examples/petclinic")).await;
        moto
    }

    /// Runs `tierdeck sandbox up` for the spec repository at `spec_root`; returns its output.
    pub async fn sandbox(&self, spec_root: &Path) -> String {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec_root.to_str().expect("a UTF-8 path");
        let out = cli_in(
            dir.path(),
            &["sandbox", "up", "--endpoint", &self.url, "--spec", spec],
            None,
        )
        .await;
        assert!(
            out.status.success(),
            "sandbox up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }
}
