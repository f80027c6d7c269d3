//! Running the binary: configuration errors, health and metrics.

use tierdeck_tests::{cli_in, TestApp};

#[tokio::test]
async fn a_bad_configuration_value_stops_the_program_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tierdeck.toml"),
        "[server]\nsession_idle_minutes = \"soon\"\n",
    )
    .unwrap();
    let out = cli_in(dir.path(), &["serve"], None).await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "tierdeck: configuration: tierdeck.toml: line 2: `server.session_idle_minutes`: invalid type: string \"soon\", expected u64\n"
    );

    let dir = tempfile::tempdir().unwrap();
    let out = cli_in(
        dir.path(),
        &["--config", "missing.toml", "user", "list"],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .starts_with("tierdeck: configuration: cannot read the configuration file missing.toml"));
}

#[tokio::test]
async fn health_and_metrics_answer_without_signing_in() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "viewer").await;
    let c = app.client();
    // The back end, and the one replica leads from its first look on.
    let backend = if tierdeck_tests::pg::in_use() {
        "postgres"
    } else {
        "sqlite"
    };
    let said = tierdeck_tests::wait_for("the replica to lead", 10, || async {
        let res = c.get("/healthz").await;
        assert_eq!(res.status(), 200);
        let text = res.text().await.unwrap();
        text.ends_with("leader\n").then_some(text)
    })
    .await;
    assert_eq!(said, format!("ok {backend} leader\n"));

    c.login("alice", "wrong password").await;
    app.login("alice").await;
    let metrics = c.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"tierdeck_logins_total{outcome="ok"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"tierdeck_logins_total{outcome="failed"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"tierdeck_http_requests_total{method="GET",route="/healthz",status="200"}"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("tierdeck_leader 1\n"), "{metrics}");
    assert!(
        metrics.contains("tierdeck_leader_changes_total 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains(r#"tierdeck_http_request_duration_seconds_bucket{le="0.4",method="POST",route="/login"}"#), "{metrics}");
}

#[tokio::test]
async fn the_command_line_refuses_bad_input_with_a_sentence() {
    let app = TestApp::spawn().await;
    let out = app
        .cli(
            &[
                "user",
                "add",
                "Bad Name",
                "--role",
                "viewer",
                "--password-stdin",
            ],
            Some("long enough password"),
        )
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("tierdeck: name: user name must be"));
    let out = app
        .cli(&["user", "set-role", "nobody", "admin"], None)
        .await;
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "tierdeck: there is no user named `nobody`\n"
    );
    app.add_user("ann", "viewer").await;
    let out = app.cli(&["user", "list"], None).await;
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("ann")
            && listing.contains("viewer")
            && listing.contains("ann@example.com"),
        "{listing}"
    );
}

#[tokio::test]
async fn the_site_files_go_out_gzipped_to_a_browser_that_takes_gzip() {
    let app = TestApp::spawn().await;
    let c = app.client();
    let plain = c.get("/pkg/tierdeck.wasm").await;
    assert_eq!(plain.status(), 200);
    assert_eq!(plain.headers()["content-type"], "application/wasm");
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.bytes().await.unwrap();
    assert_eq!(&plain[..4], b"\0asm");

    let packed = c
        .http
        .get(c.url("/pkg/tierdeck.wasm"))
        .header("accept-encoding", "gzip, deflate, br")
        .send()
        .await
        .unwrap();
    assert_eq!(packed.status(), 200);
    assert_eq!(packed.headers()["content-encoding"], "gzip");
    assert_eq!(packed.headers()["content-type"], "application/wasm");
    let packed = packed.bytes().await.unwrap();
    assert_eq!(&packed[..2], &[0x1f, 0x8b], "a gzip stream");
    assert!(
        packed.len() * 2 < plain.len(),
        "{} gzipped bytes of {}",
        packed.len(),
        plain.len()
    );

    // Without gzip, the file as it is; a file that is not there is not found.
    let css = c.get("/pkg/tierdeck.css").await;
    assert_eq!(css.status(), 200);
    assert!(css.headers().get("content-encoding").is_none());
    assert!(css.text().await.unwrap().contains('{'));
    assert_eq!(c.get("/pkg/nothing.js").await.status(), 404);

    let metrics = c.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(
            r#"tierdeck_http_requests_total{method="GET",route="/pkg/*",status="200"} 3"#
        ),
        "{metrics}"
    );
}
