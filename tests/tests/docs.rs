//! The documents that must stay in step with the code.

use std::collections::BTreeSet;

use tierdeck_tests::workspace;

/// `"service:Action"` strings in the AWS adapters' source.
fn actions_in_code() -> BTreeSet<String> {
    let dir = workspace().join("engine/src/aws");
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        // The sandbox only ever talks to a loopback emulator.
        if path.file_name().unwrap() == "sandbox.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for piece in text.split('"').skip(1).step_by(2) {
            let Some((service, action)) = piece.split_once(':') else {
                continue;
            };
            let known = [
                "autoscaling",
                "ec2",
                "rds",
                "cloudwatch",
                "elasticloadbalancing",
                "pricing",
            ]
            .contains(&service);
            if known
                && !action.is_empty()
                && action.chars().all(|c| c.is_ascii_alphanumeric())
                && action.starts_with(|c: char| c.is_ascii_uppercase())
            {
                found.insert(piece.to_owned());
            }
        }
    }
    found
}

/// The actions a policy document grants.
fn granted(path: &str) -> BTreeSet<String> {
    let policy: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(workspace().join(path)).unwrap()).unwrap();
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| match &s["Action"] {
            serde_json::Value::Array(a) => a.clone(),
            one => vec![one.clone()],
        })
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn each_environments_roles_split_the_one_policy_into_reading_and_writing() {
    let all = granted("docs/iam-policy.json");
    let read = granted("docs/iam/plan-role-policy.json");
    let write = granted("docs/iam/apply-role-policy.json");
    let panel = granted("docs/iam/panel-policy.json");
    let trust = granted("docs/iam/trust-policy.json");
    // The same actions, split: nothing granted to a role that the single-account policy does
    // not grant, and nothing of it left out.
    let mut split: BTreeSet<String> = read.union(&write).cloned().collect();
    split.extend(panel.iter().filter(|a| !a.starts_with("sts:")).cloned());
    assert_eq!(
        split, all,
        "the roles' policies and docs/iam-policy.json disagree"
    );
    // The plan role only reads; the apply role holds every write, and only the reads a run
    // makes (a settling poll, a policy's ARN, a source group's id).
    let writes = |a: &String| {
        let action = a.split(':').nth(1).unwrap_or_default();
        !(action.starts_with("Describe") || action.starts_with("Get") || action.starts_with("List"))
    };
    assert!(
        read.iter().all(|a| !writes(a)),
        "the plan role writes: {read:?}"
    );
    for a in all.iter().filter(|a| writes(a)) {
        assert!(write.contains(a), "the apply role lacks {a}");
    }
    let run_reads: BTreeSet<String> = write.iter().filter(|a| !writes(a)).cloned().collect();
    assert_eq!(
        run_reads,
        [
            "autoscaling:DescribeAutoScalingGroups",
            "autoscaling:DescribeInstanceRefreshes",
            "autoscaling:DescribePolicies",
            "ec2:DescribeSecurityGroups",
            "rds:DescribeDBInstances",
        ]
        .map(String::from)
        .into(),
    );
    // Prices are the panel's own call; roles are assumed by it, with the external id.
    assert!(!read.contains("pricing:GetProducts") && !write.contains("pricing:GetProducts"));
    assert!(panel.contains("sts:AssumeRole") && trust.contains("sts:AssumeRole"));
    let text = std::fs::read_to_string(workspace().join("docs/iam/trust-policy.json")).unwrap();
    assert!(text.contains("sts:ExternalId"));
    // The page that explains them links each.
    let page = std::fs::read_to_string(workspace().join("docs/aws-accounts.md")).unwrap();
    for f in [
        "plan-role-policy.json",
        "apply-role-policy.json",
        "panel-policy.json",
        "trust-policy.json",
    ] {
        assert!(
            page.contains(&format!("iam/{f}")),
            "docs/aws-accounts.md links {f}"
        );
    }
}

#[test]
fn the_iam_policy_grants_exactly_the_actions_the_adapters_call() {
    let policy: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workspace().join("docs/iam-policy.json")).unwrap(),
    )
    .unwrap();
    let granted: BTreeSet<String> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap().iter())
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let called = actions_in_code();
    assert!(called.len() >= 17, "the scan found too little: {called:?}");
    let missing: Vec<_> = called.difference(&granted).collect();
    let unused: Vec<_> = granted.difference(&called).collect();
    assert!(
        missing.is_empty() && unused.is_empty(),
        "docs/iam-policy.json is out of step with engine/src/aws: missing {missing:?}, never called {unused:?}"
    );
    // Every action the planner names is one of them.
    let plan = std::fs::read_to_string(workspace().join("domain/src/plan/mod.rs")).unwrap();
    for line in plan.lines().filter(|l| l.contains("=> \"")) {
        if let Some(call) = line.split('"').nth(1).filter(|c| c.contains(':')) {
            assert!(granted.contains(call), "the plan names {call}");
        }
    }
}

/// (path, method) of every route in the REST API's router, read from its source.
fn routes_in_code() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(workspace().join("server/src/http/api/mod.rs")).unwrap();
    // Join the router's lines so a route split over lines reads as one.
    let joined: String = text.lines().map(str::trim).collect::<Vec<_>>().join(" ");
    let mut found = BTreeSet::new();
    for piece in joined.split(".route(").skip(1) {
        let mut quoted = piece.split('"');
        let (Some(_), Some(path)) = (quoted.next(), quoted.next()) else {
            continue;
        };
        let rest = piece
            .split_once(',')
            .map(|(_, r)| r.trim())
            .unwrap_or_default();
        for method in ["get", "post", "put", "delete", "patch"] {
            if rest.starts_with(&format!("{method}(")) {
                found.insert((path.to_owned(), method.to_owned()));
            }
        }
    }
    found
}

#[test]
fn the_openapi_document_names_exactly_the_routes() {
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workspace().join("docs/openapi.json")).unwrap(),
    )
    .unwrap();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (path.clone(), m.clone()))
        })
        .collect();
    let routed = routes_in_code();
    assert!(routed.len() >= 20, "the scan found too little: {routed:?}");
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "docs/openapi.json is out of step with server/src/http/api/mod.rs: undocumented {undocumented:?}, not routed {unrouted:?}"
    );
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            assert!(
                op["x-tierdeck-role"].is_string() && op["summary"].is_string(),
                "{method} {path} needs a summary and the role it takes"
            );
        }
    }
}

fn openapi() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(workspace().join("docs/openapi.json")).unwrap())
        .unwrap()
}

/// A POST of `path` whose head says a body of `length` bytes, none of which is sent: the
/// answer's status and body.
async fn too_long(api: &tierdeck_tests::Api, path: &str, length: usize) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = api.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(host).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n",
        api.token
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Every rejection of a request, whichever part of it is wrong (its path, its query string, its
/// body, its method), is the API's own `{"error": {"code", "message"}}` with a status that
/// docs/openapi.json lists for the operation: never the framework's plain text.
#[tokio::test]
async fn every_rejected_request_is_the_apis_error_with_a_documented_status() {
    let app = tierdeck_tests::TestApp::spawn().await;
    let api = app.api_as("root", "admin").await;
    let doc = openapi();
    let cases: [(&str, &str, &str, Option<Vec<u8>>); 6] = [
        ("get", "/audit", "/audit?cursor=abc", None),
        ("get", "/audit", "/audit?limit=-1", None),
        (
            "get",
            "/audit/export",
            "/audit/export?since=1&cursor=x",
            None,
        ),
        (
            "get",
            "/environments/{env}/slo",
            "/environments/prod/slo?at=soon",
            None,
        ),
        ("get", "/environments/{env}", "/environments/%FF%FE", None),
        (
            "post",
            "/changes/{id}/apply",
            "/changes/1/apply",
            Some(b"{not json".to_vec()),
        ),
    ];
    for (method, template, path, body) in cases {
        let url = format!("{}/api/v1{path}", api.base);
        let req = match method {
            "get" => api.http.get(&url),
            _ => api.http.post(&url),
        };
        let req = req.bearer_auth(&api.token);
        let req = match body {
            Some(b) => req.header("content-type", "application/json").body(b),
            None => req,
        };
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let documented = &doc["paths"][template][method]["responses"];
        assert!(
            documented.get(status.to_string()).is_some(),
            "{method} {path}: {status} is not documented for {template}: {text}"
        );
        assert!(status >= 400, "{method} {path}: {status} {text}");
        let v: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: {status} is not JSON ({e}): {text}"));
        assert!(
            v["error"]["code"].is_string() && v["error"]["message"].is_string(),
            "{method} {path}: {text}"
        );
    }
    // A body past the panel's limit: refused from its length, before it is sent (the answer
    // comes while a client would still be writing it, so the request says the length alone).
    for (template, path) in [
        ("/changes/{id}/approve", "/changes/1/approve"),
        ("/hooks/git", "/hooks/git"),
    ] {
        let (status, text) = too_long(&api, &format!("/api/v1{path}"), 3 << 20).await;
        assert_eq!(status, 413, "{path}: {text}");
        assert!(
            doc["paths"][template]["post"]["responses"]
                .get("413")
                .is_some(),
            "{template}"
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(v["error"]["code"], "too_large", "{path}: {text}");
    }
    // A method a route does not take.
    let res = api
        .http
        .delete(format!("{}/api/v1/changes", api.base))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "method_not_allowed", "{v}");
}

/// schemathesis (pinned, installed beside moto by `scripts/setup --test`) generates requests
/// from docs/openapi.json, valid and not, against a panel with a spec repository and a change:
/// no answer may be a 5xx, and every status must be one the document lists for its operation.
#[tokio::test]
async fn generated_requests_get_no_server_error_and_only_documented_statuses() {
    let st = std::env::var_os("TIERDECK_SCHEMATHESIS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/tierdeck/venv/bin/st")
        });
    assert!(
        st.exists(),
        "{} is missing: run scripts/setup --test (it installs schemathesis)",
        st.display()
    );
    let repo = tierdeck_tests::git::SpecRepo::petclinic();
    // AWS is the emulator: an AWS that cannot be reached is a documented 503, never what a
    // request's data brings about.
    let moto = tierdeck_tests::Moto::sandboxed().await;
    let app = tierdeck_tests::TestApp::watching(&repo.url(), 3600, Some(&moto.url)).await;
    let api = app.api_as("root", "admin").await;
    let change = api.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    // Run in a folder of its own: the fuzzer's engine may write its files where it runs. Path
    // parameters name what exists (prod, the change), so requests reach past the lookups.
    let scratch = tempfile::tempdir().unwrap();
    let config = scratch.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        format!("[parameters]\n\"path.env\" = \"prod\"\n\"path.id\" = {change}\n"),
    )
    .unwrap();
    let run = |config: Option<&std::path::Path>, operations: &[&str]| {
        let mut cmd = tokio::process::Command::new(&st);
        cmd.current_dir(scratch.path());
        if let Some(c) = config {
            cmd.arg("--config-file").arg(c);
        }
        cmd.args(["run", &format!("{}/api/v1/openapi.json", app.base)])
            .args(["--url", &format!("{}/api/v1", app.base)])
            .args(["--header", &format!("Authorization: Bearer {}", api.token)])
            .args(["--checks", "not_a_server_error,status_code_conformance"])
            .args(["--max-examples", "15", "--seed", "1"])
            .args(["--generation-database", "none", "--no-color"])
            .args(operations)
            .kill_on_drop(true);
        async move {
            let out = cmd.output().await.expect("running schemathesis");
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            println!("{said}");
            assert!(out.status.success(), "schemathesis found failures:\n{said}");
        }
    };
    // Every operation but revoking a token (which could revoke the fuzzer's own), then that one.
    let revoke = "/tokens/{id}/revoke";
    run(Some(&config), &["--exclude-path", revoke]).await;
    assert_eq!(
        api.get("/api/v1/me").await.status(),
        200,
        "the fuzzer's token held all along"
    );
    run(None, &["--include-path", revoke]).await;
}

#[tokio::test]
async fn the_panel_serves_its_openapi_document_to_anyone() {
    let app = tierdeck_tests::TestApp::spawn().await;
    let res = reqwest::get(format!("{}/api/v1/openapi.json", app.base))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let served: serde_json::Value = res.json().await.unwrap();
    let file: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workspace().join("docs/openapi.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(served, file);
}

/// Every page of the app and the browser tests' screenshot of it that the tour shows.
const PAGES: &[(&str, &str)] = &[
    ("/", "overview"),
    ("/login", "login"),
    ("/changes", "changes"),
    ("/changes/:id", "story-1-author"),
    ("/environments", "environments"),
    ("/environments/:name", "environment"),
    ("/environments/import", "import"),
    ("/monitoring", "monitoring"),
    ("/scaling", "scaling"),
    ("/slo", "slo"),
    ("/audit", "story-5-audit"),
    ("/admin", "admin"),
    ("/account", "account"),
];

/// Names the browser tests save screenshots under: literals, and the fixed start of
/// `format!` names (`story-2-approved-by-{who}` → `story-2-approved-by-`).
fn screenshots_in_tests() -> (BTreeSet<String>, BTreeSet<String>) {
    let text = std::fs::read_to_string(workspace().join("tests/tests/browser.rs")).unwrap();
    let mut names = BTreeSet::new();
    let mut prefixes = BTreeSet::new();
    for piece in text.split(".screenshot(").skip(1) {
        if let Some(rest) = piece.strip_prefix('"') {
            names.insert(rest.split('"').next().unwrap().to_owned());
        } else if let Some(rest) = piece.strip_prefix("&format!(\"") {
            prefixes.insert(rest.split('{').next().unwrap().to_owned());
        }
    }
    (names, prefixes)
}

#[test]
fn the_tour_shows_every_page_as_the_browser_tests_see_it() {
    // The app's pages are exactly PAGES.
    let app = std::fs::read_to_string(workspace().join("app/src/lib.rs")).unwrap();
    let routes: BTreeSet<&str> = app
        .split("path!(\"")
        .skip(1)
        .map(|p| p.split('"').next().unwrap())
        .collect();
    let listed: BTreeSet<&str> = PAGES.iter().map(|(route, _)| *route).collect();
    assert_eq!(
        routes, listed,
        "a page without a screenshot in the tour, or one gone"
    );

    let (names, prefixes) = screenshots_in_tests();
    let saved = |name: &str| names.contains(name) || prefixes.iter().any(|p| name.starts_with(p));
    let tour = std::fs::read_to_string(workspace().join("docs/tour.md")).unwrap();
    for (route, shot) in PAGES {
        assert!(
            names.contains(*shot),
            "the browser tests save no `{shot}` ({route})"
        );
        assert!(
            tour.contains(&format!("(screenshots/{shot}.png)")),
            "docs/tour.md does not show {route} (screenshots/{shot}.png)"
        );
    }

    // Every picture in the docs is one the browser tests take, and every file is used.
    let mut shown = BTreeSet::new();
    for entry in std::fs::read_dir(workspace().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            let text = std::fs::read_to_string(&path).unwrap();
            for piece in text.split("(screenshots/").skip(1) {
                let file = piece.split(')').next().unwrap();
                let name = file.strip_suffix(".png").expect("PNG screenshots");
                assert!(
                    saved(name),
                    "{}: no browser test saves {name}",
                    path.display()
                );
                shown.insert(file.to_owned());
            }
        }
    }
    let files: BTreeSet<String> = std::fs::read_dir(workspace().join("docs/screenshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        files, shown,
        "docs/screenshots holds exactly the pictures the docs show"
    );
}

#[tokio::test]
async fn every_configuration_in_the_docs_is_one_the_panel_accepts() {
    let mut checked = 0;
    let mut files = vec![workspace().join("README.md")];
    for entry in std::fs::read_dir(workspace().join("docs")).unwrap() {
        files.push(entry.unwrap().path());
    }
    for path in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
    {
        let text = std::fs::read_to_string(path).unwrap();
        for block in text.split("```toml\n").skip(1) {
            let toml = block.split("```").next().unwrap();
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("tierdeck.toml");
            std::fs::write(&file, toml).unwrap();
            // The database goes to the temporary folder (the harness sets
            // TIERDECK_DATABASE__PATH, and on PostgreSQL TIERDECK_DATABASE__URL, which win
            // over the file; a documented PostgreSQL URL names no server here).
            let sqlite = format!("sqlite://{}", dir.path().join("tierdeck.sqlite").display());
            let url: &[(&str, &str)] = if tierdeck_tests::pg::in_use() {
                &[]
            } else {
                &[("TIERDECK_DATABASE__URL", &sqlite)]
            };
            let out = tierdeck_tests::cli_with(
                dir.path(),
                &["--config", file.to_str().unwrap(), "user", "list"],
                None,
                url,
            )
            .await;
            assert!(
                out.status.success(),
                "{}: {}\n{toml}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 1, "the deployment guide shows a configuration");
}

/// The set-up path: the README's two quick-start commands, the scripts they run, CI and the
/// image build. A tool from `cargo install` is resolved outside `Cargo.lock` and, once on a
/// machine, never built by CI again; every Rust tool must be a workspace dependency instead.
#[test]
fn nothing_on_the_set_up_path_runs_cargo_install_and_the_quick_start_is_two_commands() {
    let root = workspace();
    let mut files: Vec<_> = std::fs::read_dir(root.join("scripts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.extend([root.join(".ci/run"), root.join("Dockerfile")]);
    files.sort();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split('#').next().unwrap_or("");
            assert!(
                !code.contains("cargo install") && !code.contains("cargo leptos"),
                "{}:{}: `{}`: build tools come from Cargo.lock (`cargo xtask build`)",
                path.display(),
                n + 1,
                line.trim()
            );
        }
    }
    assert!(files.len() >= 5, "{files:?}");

    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let quick_start = readme
        .split("## Quick start")
        .nth(1)
        .and_then(|s| s.split("```sh\n").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("the README's quick start has a sh block");
    let commands: Vec<&str> = quick_start
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(commands, ["scripts/demo", "scripts/test"], "{quick_start}");
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(
        ci.contains("exec scripts/test"),
        "CI runs the README's test command"
    );
}

/// GitHub's anchor for a heading: lower case, punctuation dropped (but `-` and `_`), spaces
/// as `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings (outside code blocks).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            found.insert(slug(line.trim_start_matches('#')));
        }
    }
    found
}

/// The README and every page of docs/.
fn markdown_files() -> Vec<std::path::PathBuf> {
    let mut files = vec![workspace().join("README.md")];
    for entry in std::fs::read_dir(workspace().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files.sort();
    files
}

#[test]
fn every_link_in_the_docs_leads_to_a_file_and_heading_that_exist() {
    let mut checked = 0;
    let mut broken = Vec::new();
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        // Links outside code blocks.
        let mut prose = String::new();
        let mut in_code = false;
        for line in text.lines() {
            if line.starts_with("```") {
                in_code = !in_code;
            } else if !in_code {
                prose.push_str(line);
                prose.push('\n');
            }
        }
        for piece in prose.split("](").skip(1) {
            let Some(target) = piece.split(')').next() else {
                continue;
            };
            if target.contains("://") || target.starts_with("mailto:") || target.contains(' ') {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (target, None),
            };
            let dest = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            checked += 1;
            if !dest.exists() {
                broken.push(format!("{}: ({target}): no such file", file.display()));
                continue;
            }
            if let Some(anchor) = anchor {
                let heads = anchors(&std::fs::read_to_string(&dest).unwrap_or_default());
                if !heads.contains(anchor) {
                    broken.push(format!(
                        "{}: ({target}): {} has no heading `#{anchor}`",
                        file.display(),
                        dest.display()
                    ));
                }
            }
        }
    }
    assert!(checked >= 20, "the scan found too few links: {checked}");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// A source file without its test code: the rest of the file from a `#[cfg(test)]` module
/// written inline (`mod tests { … }`, by convention last), and the paths of the modules it
/// declares under `#[cfg(test)]` in files of their own (`mod tests;`, `mod testing;`).
fn without_tests(path: &std::path::Path, text: &str) -> (String, Vec<std::path::PathBuf>) {
    let name = path.file_stem().unwrap().to_string_lossy();
    let dir = if matches!(name.as_ref(), "lib" | "main" | "mod") {
        path.parent().unwrap().to_path_buf()
    } else {
        path.with_extension("")
    };
    let mut code = String::new();
    let mut test_files = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]" {
            let next = lines.peek().map(|l| l.trim()).unwrap_or_default();
            let decl = next
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub ")
                .strip_prefix("mod ");
            if let Some(decl) = decl {
                if let Some(module) = decl.strip_suffix(';') {
                    test_files.push(dir.join(format!("{module}.rs")));
                    test_files.push(dir.join(module));
                } else {
                    break;
                }
            }
        }
        code.push_str(line);
        code.push('\n');
    }
    (code, test_files)
}

/// Audit actions the code records: the `"area.event"` literals of the engine (whose services
/// write every audit event), the change lifecycle and the HTTP layer, outside their tests.
fn audit_actions_in_code() -> BTreeSet<String> {
    let root = workspace();
    let mut files = vec![root.join("domain/src/lifecycle.rs")];
    let mut dirs = vec![root.join("engine/src"), root.join("server/src/http")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut tests = Vec::new();
    let mut code = Vec::new();
    for path in &files {
        let (text, test_files) = without_tests(path, &std::fs::read_to_string(path).unwrap());
        tests.extend(test_files);
        code.push((path.clone(), text));
    }
    let mut found = BTreeSet::new();
    for (path, text) in code {
        if tests.iter().any(|t| path.starts_with(t)) {
            continue;
        }
        for piece in text.split('"').skip(1).step_by(2) {
            let Some((area, event)) = piece.split_once('.') else {
                continue;
            };
            let word =
                |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            if word(area) && word(event) && !area.contains('_') {
                found.insert(piece.to_owned());
            }
        }
        // The one action without an area.
        if text.contains("action: \"logout\"") {
            found.insert("logout".to_owned());
        }
    }
    found
}

#[test]
fn the_readme_lists_exactly_the_audit_actions_the_code_records() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let section = readme
        .split("### The audit log")
        .nth(1)
        .and_then(|s| s.split("\n### ").next())
        .expect("the README has an audit section");
    // The first cell of each row of its table of actions.
    let listed: BTreeSet<String> = section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .flat_map(|l| {
            let cell = l.split('|').nth(1).unwrap_or_default();
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    let recorded = audit_actions_in_code();
    assert!(
        recorded.len() >= 40,
        "the scan found too little: {recorded:?}"
    );
    let unlisted: Vec<_> = recorded.difference(&listed).collect();
    let unknown: Vec<_> = listed.difference(&recorded).collect();
    assert!(
        unlisted.is_empty() && unknown.is_empty(),
        "README's audit actions are out of step with the code: not listed {unlisted:?}, never recorded {unknown:?}"
    );
}

/// Runs `tierdeck user list` with `vars` (a configuration from the environment alone): its exit
/// code and standard error.
async fn with_config(vars: &[(String, String)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = tierdeck_tests::cli_with(dir.path(), &["user", "list"], None, &vars).await;
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The names listed after the first of `markers` in an error: `use one of a, b`, `expected
/// one of `a`, `b``, or serde's `expected `a`` when there is one.
fn one_of(stderr: &str, markers: &[&str]) -> Vec<String> {
    let list = markers
        .iter()
        .find_map(|m| stderr.split(m).nth(1))
        .unwrap_or_else(|| panic!("none of {markers:?} in {stderr}"));
    // serde lists two names as "`a` or `b`".
    list.lines()
        .next()
        .unwrap()
        .replace(" or ", ", ")
        .split(", ")
        .map(|s| s.trim().trim_matches('`').to_owned())
        .collect()
}

#[tokio::test]
async fn every_configuration_key_is_listed_with_its_range_and_the_range_is_enforced() {
    // The keys, as the binary itself names them.
    let var = |section: &str, key: &str| {
        format!(
            "TIERDECK_{}__{}",
            section.to_uppercase(),
            key.to_uppercase()
        )
    };
    let (_, stderr) = with_config(&[("TIERDECK_NOSUCH__KEY".into(), "1".into())]).await;
    let sections = one_of(&stderr, &["use one of "]);
    assert!(sections.len() >= 10, "{stderr}");
    let mut keys = Vec::new();
    for section in &sections {
        let (_, stderr) = with_config(&[(var(section, "no_such_key"), "1".into())]).await;
        for key in one_of(&stderr, &["expected one of ", "expected "]) {
            keys.push(format!("{section}.{key}"));
        }
    }

    // The README's table: every key, and for every number its range.
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let table = readme
        .split("## Configuration")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .unwrap();
    let mut rows = std::collections::BTreeMap::new();
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        rows.insert(cells[1].trim_matches('`').to_owned(), cells[3].to_owned());
    }
    let listed: BTreeSet<&String> = rows.keys().collect();
    let known: BTreeSet<&String> = keys.iter().collect();
    assert_eq!(
        listed, known,
        "the README's configuration table lists every key, and only those"
    );

    let mut low_config = Vec::new();
    let mut high_config = Vec::new();
    let mut numbers = 0;
    for key in &keys {
        let (section, name) = key.split_once('.').unwrap();
        let v = var(section, name);
        let (_, stderr) = with_config(&[(v.clone(), "many".into())]).await;
        if !stderr.contains("must be a whole number") {
            continue;
        }
        numbers += 1;
        let range = &rows[key];
        let (low, high) = range
            .split_once('–')
            .and_then(|(l, h)| Some((l.trim().parse::<u64>().ok()?, h.trim().parse::<u64>().ok()?)))
            .unwrap_or_else(|| panic!("{key}: the README's range `{range}` is not `low–high`"));
        let mut outside = vec![high + 1];
        if low > 0 {
            outside.push(low - 1);
        }
        for value in outside {
            let (code, stderr) = with_config(&[(v.clone(), value.to_string())]).await;
            assert_eq!(code, 2, "{key} = {value} is refused: {stderr}");
            assert!(
                stderr.contains(&format!("`{key}` must be between {low} and {high}")),
                "{key} = {value}: the error names the key and its range: {stderr}"
            );
        }
        low_config.push((v.clone(), low.to_string()));
        high_config.push((v, high.to_string()));
    }
    assert!(numbers >= 20, "{numbers} numbers");
    for config in [low_config, high_config] {
        let (code, stderr) = with_config(&config).await;
        assert_eq!(code, 0, "both ends of every range are accepted: {stderr}");
    }
}

#[tokio::test]
async fn a_missing_price_file_stops_every_command_like_any_configuration_error() {
    let missing = (
        "TIERDECK_COST__PRICE_FILE".to_owned(),
        "/nonexistent/prices.yaml".to_owned(),
    );
    let (code, stderr) = with_config(std::slice::from_ref(&missing)).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("configuration: `cost.price_file` /nonexistent/prices.yaml"),
        "{stderr}"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = tierdeck_tests::cli_with(
        dir.path(),
        &["serve"],
        None,
        &[(missing.0.as_str(), missing.1.as_str())],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_openapi_operation_describes_its_answer_with_a_schema() {
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workspace().join("docs/openapi.json")).unwrap(),
    )
    .unwrap();
    let schemas = &doc["components"]["schemas"];
    let mut missing = Vec::new();
    // Every `$ref` names a schema that is there.
    fn refs<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v.as_str()) {
                        ("$ref", Some(r)) => out.push(r),
                        _ => refs(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in &all {
        let name = r.rsplit('/').next().unwrap();
        let ok = if r.starts_with("#/components/schemas/") {
            schemas[name].is_object()
        } else {
            doc["components"]["responses"][name].is_object()
        };
        assert!(ok, "{r} names nothing");
    }
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let success: Vec<(&String, &serde_json::Value)> = op["responses"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(code, _)| code.starts_with('2'))
                .collect();
            assert!(!success.is_empty(), "{method} {path} has no success answer");
            for (code, res) in success {
                if code == "204" {
                    continue;
                }
                let content = res["content"].as_object();
                let described = content.is_some_and(|c| {
                    !c.is_empty()
                        && c.values()
                            .all(|media| media["schema"].as_object().is_some_and(|s| !s.is_empty()))
                });
                if !described {
                    missing.push(format!("{method} {path} {code}"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "operations whose answer has no schema: {missing:?}"
    );
}

#[test]
fn the_suggested_pre_commit_hook_validates_what_is_staged_not_the_working_tree() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let hook = readme
        .split("`.git/hooks/pre-commit`")
        .nth(1)
        .and_then(|s| s.split("```sh\n").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("the README shows the pre-commit hook as a sh block after naming `.git/hooks/pre-commit`");
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("specs");
    tierdeck_tests::copy_dir(&workspace().join("examples/petclinic"), &work);
    // The hook finds `tierdeck` on the PATH, as a team's machines would have it.
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(tierdeck_tests::binary(), bin.join("tierdeck")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(&work)
            .env("PATH", &path)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Seung Lo")
            .env("GIT_AUTHOR_EMAIL", "seung.lo@petclinic.example")
            .env("GIT_COMMITTER_NAME", "Seung Lo")
            .env("GIT_COMMITTER_EMAIL", "seung.lo@petclinic.example")
            .output()
            .unwrap()
    };
    assert!(git(&["init", "-q", "--initial-branch=main"])
        .status
        .success());
    let hook_path = work.join(".git/hooks/pre-commit");
    std::fs::write(&hook_path, hook).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook_path, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(git(&["add", "-A"]).status.success());
    let first = git(&[
        "-c",
        "commit.gpgsign=false",
        "commit",
        "-qm",
        "The environments",
    ]);
    assert!(
        first.status.success(),
        "a valid tree commits: {}",
        String::from_utf8_lossy(&first.stderr)
    );

    let file = work.join("environments/prod/autoscaling.yaml");
    let good = std::fs::read_to_string(&file).unwrap();
    let bad = good.replacen("max: 8", "max: 1", 1);
    // A broken file staged, then fixed in the working tree only: the commit would hold the
    // broken one, so the hook refuses it.
    std::fs::write(&file, &bad).unwrap();
    assert!(git(&["add", "environments/prod/autoscaling.yaml"])
        .status
        .success());
    std::fs::write(&file, &good).unwrap();
    let refused = git(&["-c", "commit.gpgsign=false", "commit", "-qm", "Broken max"]);
    assert!(
        !refused.status.success(),
        "the staged error stops the commit"
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(
        said.contains("environments/prod/autoscaling.yaml:") && said.contains("is above max 1"),
        "it names the staged file's error: {said}"
    );
    // The other way round: the fix staged, a mistake left unstaged in the working tree.
    std::fs::write(&file, good.replacen("max: 8", "max: 7", 1)).unwrap();
    assert!(git(&["add", "environments/prod/autoscaling.yaml"])
        .status
        .success());
    std::fs::write(&file, &bad).unwrap();
    let ok = git(&["-c", "commit.gpgsign=false", "commit", "-qm", "Web max 7"]);
    assert!(
        ok.status.success(),
        "what is staged is valid: {}{}",
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );
}
