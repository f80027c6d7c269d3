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
            let known = ["autoscaling", "ec2", "rds", "cloudwatch", "pricing"].contains(&service);
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
            // TIERDECK_DATABASE__PATH, which wins over the file).
            let out = tierdeck_tests::cli_in(
                dir.path(),
                &["--config", file.to_str().unwrap(), "user", "list"],
                None,
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
