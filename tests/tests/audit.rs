//! The audit log: pages, filters, exports, and the hash chain against tampering.

use tierdeck_tests::{actions, without_markers, TestApp};

async fn app_with_history() -> (TestApp, tierdeck_tests::Client) {
    let app = TestApp::spawn().await;
    app.add_user("root", "admin").await;
    for name in ["ann", "bob", "cho"] {
        app.add_user(name, "viewer").await;
    }
    let root = app.login("root").await;
    (app, root)
}

#[tokio::test]
async fn events_come_newest_first_in_keyset_pages() {
    let (_app, root) = app_with_history().await;
    // 4 user.created + 1 login.ok.
    let first: serde_json::Value = root
        .get("/api/v1/audit?limit=2")
        .await
        .json()
        .await
        .unwrap();
    let events = first["events"].as_array().unwrap();
    assert_eq!(actions(events), ["login.ok", "user.created"]);
    assert_eq!(events[0]["seq"], 5);
    let cursor = first["next_cursor"].as_i64().unwrap();
    assert_eq!(cursor, 4);

    let second: serde_json::Value = root
        .get(&format!("/api/v1/audit?limit=2&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    let seqs: Vec<i64> = second["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [3, 2]);
    let third: serde_json::Value = root
        .get("/api/v1/audit?limit=2&cursor=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(third["events"].as_array().unwrap().len(), 1);
    assert!(third["next_cursor"].is_null());

    // Filters: actor, action prefix, time range.
    assert_eq!(root.audit("actor=root").await.len(), 1);
    assert_eq!(root.audit("action=user").await.len(), 4);
    assert_eq!(
        root.audit("action=user.created&since=2000-01-01&until=2100-01-01")
            .await
            .len(),
        4
    );
    assert_eq!(root.audit("until=2000-01-01").await.len(), 0);
    let bad = root.get("/api/v1/audit?since=yesterday").await;
    assert_eq!(bad.status(), 422);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("since: `yesterday` is not a time"));
}

#[tokio::test]
async fn exports_stream_every_matching_event_as_csv_and_json() {
    let (_app, root) = app_with_history().await;
    let res = root
        .get("/api/v1/audit/export?format=csv&action=user.created")
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "seq,at,actor_kind,actor,token,action,environment,target,detail,client_addr,prev_hash,hash"
    );
    assert_eq!(lines.len(), 5);
    assert!(
        lines[1].starts_with("4,") && lines[1].contains(",system,system,,user.created,,cho,"),
        "{}",
        lines[1]
    );

    let json: Vec<serde_json::Value> = root
        .get("/api/v1/audit/export?format=json")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(json.len(), 5);
    assert_eq!(json[4]["prev_hash"], "0".repeat(64));
    assert_eq!(
        json[3]["prev_hash"], json[4]["hash"],
        "each row links to the one before"
    );
}

#[tokio::test]
async fn the_audit_page_shows_events_and_the_chain_state() {
    let (_app, root) = app_with_history().await;
    let page = without_markers(&root.get("/audit?actor=root").await.text().await.unwrap());
    assert!(
        page.contains("Audit chain intact: 5 events verified"),
        "chain state shown: {page}"
    );
    assert!(page.contains("login.ok"));
    assert!(!page.contains(">user.created<"), "filtered out");
}

/// Runs `sql` on the app's database behind its back; `DROP TRIGGER t` is said in the back
/// end's own words.
async fn tamper(app: &TestApp, sql: &[&str]) {
    let mut conn = app.db_connect().await;
    for s in sql {
        let s = match s.strip_prefix("DROP TRIGGER ") {
            Some(trigger) if tierdeck_tests::pg::in_use() => {
                format!("DROP TRIGGER {trigger} ON audit_events")
            }
            _ => (*s).to_owned(),
        };
        sqlx::query(&s).execute(&mut conn).await.unwrap();
    }
}

#[tokio::test]
async fn verify_passes_on_an_untouched_log_and_names_an_altered_row() {
    let (app, root) = app_with_history().await;
    let out = app.cli(&["audit", "verify"], None).await;
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "audit chain intact: 5 rows verified\n"
    );

    // The table refuses updates…
    let mut conn = app.db_connect().await;
    let refused = sqlx::query("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
        .execute(&mut conn)
        .await;
    assert!(refused.unwrap_err().to_string().contains("append-only"));
    // …but someone with the file can drop the guard.
    tamper(
        &app,
        &[
            "DROP TRIGGER audit_events_append_only_update",
            "UPDATE audit_events SET actor = 'mallory' WHERE seq = 2",
        ],
    )
    .await;
    let out = app.cli(&["audit", "verify"], None).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "audit chain BROKEN: row 2 was altered: its fields do not match its hash\n"
    );
    let report: serde_json::Value = root.get("/api/v1/audit/verify").await.json().await.unwrap();
    assert_eq!(report["broken"]["Altered"]["seq"], 2);
    let page = without_markers(&root.get("/audit").await.text().await.unwrap());
    assert!(
        page.contains("Audit chain broken: row 2 was altered"),
        "the page says so: {page}"
    );
}

#[tokio::test]
async fn verify_names_a_deleted_row_and_a_cut_off_end() {
    let (app, _root) = app_with_history().await;
    tamper(
        &app,
        &[
            "DROP TRIGGER audit_events_append_only_delete",
            "DELETE FROM audit_events WHERE seq = 3",
        ],
    )
    .await;
    let out = app.cli(&["audit", "verify"], None).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "audit chain BROKEN: row 3 is missing: row 2 is followed by row 4\n"
    );

    let (app, _root) = app_with_history().await;
    tamper(
        &app,
        &[
            "DROP TRIGGER audit_events_append_only_delete",
            "DELETE FROM audit_events WHERE seq = 5",
        ],
    )
    .await;
    let out = app.cli(&["audit", "verify"], None).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "audit chain BROKEN: row 5 is missing: the log ends at row 4 but its head records row 5\n"
    );
}

#[tokio::test]
async fn verify_refuses_a_database_that_is_not_there_and_makes_none() {
    // A SQLite file that is not there, on either test back end.
    let dir = tempfile::tempdir().unwrap();
    let out = tierdeck_tests::cli_sqlite_in(dir.path(), &["audit", "verify"]).await;
    assert!(!out.status.success());
    let db = dir.path().join("tierdeck.sqlite");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "tierdeck: there is no database at {} (`database.path`); pass the panel's configuration with --config\n",
            db.display()
        )
    );
    assert!(!db.exists(), "verify made a database");
}
