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
            let known = ["autoscaling", "ec2", "rds", "cloudwatch"].contains(&service);
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
    let plan = std::fs::read_to_string(workspace().join("domain/src/plan.rs")).unwrap();
    for line in plan.lines().filter(|l| l.contains("=> \"")) {
        if let Some(call) = line.split('"').nth(1).filter(|c| c.contains(':')) {
            assert!(granted.contains(call), "the plan names {call}");
        }
    }
}

/// (path, method) of every route in the REST API's router, read from its source.
fn routes_in_code() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(workspace().join("server/src/http/api.rs")).unwrap();
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
        "docs/openapi.json is out of step with server/src/http/api.rs: undocumented {undocumented:?}, not routed {unrouted:?}"
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
