//! The store on both back ends: the same schema from both sets of migrations, a panel moved
//! from SQLite to PostgreSQL with `tierdeck db copy`, and two replicas on one PostgreSQL
//! database acting as one panel.

use std::time::{Duration, Instant};

use sqlx::Connection as _;
use tierdeck_tests::{cli_sqlite_in, pg, Client, Options, TestApp};

/// `table.column type` for every column of the schema, without sqlx's own table.
async fn columns(url: &str) -> Vec<String> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let sql = if url.starts_with("sqlite") {
        "SELECT m.name, p.name, p.type FROM sqlite_master m, pragma_table_info(m.name) p
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%'"
    } else {
        "SELECT table_name::text, column_name::text, data_type::text
         FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name NOT LIKE '\\_sqlx%'"
    };
    let rows: Vec<(String, String, String)> =
        sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap();
    let mut out: Vec<String> = rows
        .into_iter()
        .map(|(t, c, ty)| {
            // Both schemas keep to three kinds of value.
            let ty = ty.to_ascii_lowercase();
            let kind = if ty.contains("int") {
                "integer"
            } else if ty.contains("real") || ty.contains("double") {
                "real"
            } else if ty.contains("text") {
                "text"
            } else {
                panic!("{t}.{c} is of type {ty}, which the other back end has no match for")
            };
            format!("{t}.{c} {kind}")
        })
        .collect();
    out.sort();
    out
}

/// A panel's SQLite file, migrated, in `dir`.
async fn migrated_sqlite(dir: &std::path::Path) -> String {
    // `user list` makes the file and migrates it.
    let out = cli_sqlite_in(dir, &["user", "list"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("sqlite://{}", dir.join("tierdeck.sqlite").display())
}

#[tokio::test]
async fn both_back_ends_migrate_to_the_same_tables_and_columns_and_postgres_notifies_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = migrated_sqlite(dir.path()).await;
    let server = pg::server();
    let url = server.new_database("schema_compared");
    let out = tierdeck_tests::cli_with(
        dir.path(),
        &["user", "list"],
        None,
        &[("TIERDECK_DATABASE__URL", &url)],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (lite, post) = (columns(&sqlite).await, columns(&url).await);
    let only_lite: Vec<_> = lite.iter().filter(|c| !post.contains(c)).collect();
    let only_post: Vec<_> = post.iter().filter(|c| !lite.contains(c)).collect();
    assert!(
        only_lite.is_empty() && only_post.is_empty(),
        "only in SQLite: {only_lite:?}; only in PostgreSQL: {only_post:?}"
    );
    assert!(
        lite.len() > 150,
        "the whole schema was compared: {}",
        lite.len()
    );

    // The same migration versions on both.
    let versions = |u: String| async move {
        let mut c = sqlx::AnyConnection::connect(&u).await.unwrap();
        let v: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&mut c)
                .await
                .unwrap();
        v
    };
    assert_eq!(versions(sqlite.clone()).await, versions(url.clone()).await);

    // Every PostgreSQL table tells the other replicas of its writes.
    let lacking = server.psql(
        "schema_compared",
        "SELECT string_agg(tablename, ',') FROM pg_tables
         WHERE schemaname = 'public' AND tablename NOT LIKE '\\_sqlx%'
           AND NOT EXISTS (SELECT 1 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                           WHERE c.relname = tablename AND t.tgname = tablename || '_notify_write')",
    );
    assert_eq!(lacking.trim(), "", "tables without the write notification");
}

/// Signs in `n` times as `name` on `app` (each an audited event).
async fn sign_ins(app_base: String, name: &'static str, n: usize) {
    for _ in 0..n {
        let c = Client::new(&app_base);
        let res = c.login(name, tierdeck_tests::PASSWORD).await;
        assert!(res.status().is_redirection(), "{}", res.status());
    }
}

#[tokio::test]
async fn db_copy_moves_a_panel_to_postgres_with_its_counts_and_chain_head_and_refuses_a_full_target(
) {
    let app = TestApp::spawn_with(Options {
        env: vec![(
            "TIERDECK_DATABASE__URL".to_owned(),
            format!(
                "sqlite://{}",
                tempfile::tempdir()
                    .unwrap()
                    .keep()
                    .join("t.sqlite")
                    .display()
            ),
        )],
    })
    .await;
    app.add_user("root", "admin").await;
    app.add_user("bob", "operator").await;
    sign_ins(app.base.clone(), "bob", 3).await;
    let from = app
        .env_value("TIERDECK_DATABASE__URL")
        .expect("the app's database URL");
    app.stop().await;

    let to = pg::server().new_database("copied_panel");
    let dir = tempfile::tempdir().unwrap();
    let out = tierdeck_tests::cli_in(
        dir.path(),
        &["db", "copy", "--from", &from, "--to", &to],
        None,
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let count = |table: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(table))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no count for {table}: {stdout}"))
    };
    assert_eq!(count("users"), 2);
    // Two users made, three sign-ins: five events.
    assert_eq!(count("audit_events"), 5);
    assert!(
        stdout.contains("audit chain verified on the target: 5 rows, head row 5, hash "),
        "{stdout}"
    );
    let copied = pg::server().psql("copied_panel", "SELECT COUNT(*) FROM audit_events");
    assert_eq!(copied.trim(), "5");

    // A second copy into the same target is refused, naming what it holds…
    let again = tierdeck_tests::cli_in(
        dir.path(),
        &["db", "copy", "--from", &from, "--to", &to],
        None,
    )
    .await;
    assert!(!again.status.success());
    assert_eq!(
        String::from_utf8_lossy(&again.stderr),
        "tierdeck: the target already holds data (table users: 2 rows); pass --force to replace it\n"
    );
    // …unless forced; the ids go on from the copied ones.
    let forced = tierdeck_tests::cli_in(
        dir.path(),
        &["db", "copy", "--from", &from, "--to", &to, "--force"],
        None,
    )
    .await;
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stdout)
    );
    let panel = TestApp::spawn_with(Options {
        env: vec![("TIERDECK_DATABASE__URL".to_owned(), to.clone())],
    })
    .await;
    panel.add_user("carol", "viewer").await;
    let ids = pg::server().psql(
        "copied_panel",
        "SELECT string_agg(id::text, ',' ORDER BY id) FROM users",
    );
    assert_eq!(ids.trim(), "1,2,3");
    let verify = panel.cli(&["audit", "verify"], None).await;
    assert_eq!(
        String::from_utf8_lossy(&verify.stdout),
        "audit chain intact: 6 rows verified\n"
    );
}

#[tokio::test]
async fn two_replicas_on_one_database_share_sessions_users_and_one_audit_chain() {
    let url = pg::server().new_database("two_replicas");
    let env = || Options {
        env: vec![("TIERDECK_DATABASE__URL".to_owned(), url.clone())],
    };
    let a = TestApp::spawn_with(env()).await;
    let b = TestApp::spawn_with(env()).await;
    a.add_user("root", "admin").await;
    a.add_user("bob", "operator").await;

    // Signed in on A, known on B (the cookie goes to both: same host).
    let bob_a = a.login("bob").await;
    let bob_b = Client {
        http: bob_a.http.clone(),
        base: b.base.clone(),
    };
    assert_eq!(bob_b.whoami().await, Ok("bob".into()));

    // Disabled on A: refused on B within the documented bound (a second).
    let root = a.login("root").await;
    let res = root
        .server_fn("set_disabled", &[("name", "bob"), ("disabled", "true")])
        .await;
    assert_eq!(res.status(), 200);
    let disabled_at = Instant::now();
    let mut refused = None;
    while disabled_at.elapsed() < Duration::from_secs(1) {
        if bob_b.whoami().await == Err(401) {
            refused = Some(disabled_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = refused.expect("B still let bob in a second after A disabled him");
    eprintln!(
        "B refused bob {} ms after A disabled him",
        refused.as_millis()
    );

    // Sign-ins on both at once (eight people, five each, alternating replicas): one chain, no
    // fork, no gap.
    const PEOPLE: [&str; 8] = ["u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7"];
    for name in PEOPLE {
        a.add_user(name, "viewer").await;
    }
    let writers: Vec<_> = PEOPLE
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let base = if i % 2 == 0 {
                a.base.clone()
            } else {
                b.base.clone()
            };
            tokio::spawn(sign_ins(base, name, 5))
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let verify = b.cli(&["audit", "verify"], None).await;
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{said}");
    // root and bob made, both signed in, bob disabled, eight made, forty sign-ins.
    assert_eq!(said, "audit chain intact: 53 rows verified\n");
}
