//! The store on both back ends: the same schema from both sets of migrations, a panel moved
//! from SQLite to PostgreSQL with `tierdeck db copy`, and two replicas on one PostgreSQL
//! database acting as one panel.

use std::time::{Duration, Instant};

use sqlx::Connection as _;
use tierdeck_tests::{cli_sqlite_in, pg, Client, Options, TestApp};

#[path = "../../engine/src/store/nullable_f64.rs"]
mod nullable_f64;
use nullable_f64::NullableF64;

/// A watch's burn is NULL at one write and a number at the next, on whichever pooled
/// connection: PostgreSQL must take both through one prepared statement. sqlx 0.8.6 alone does
/// not (a NULL `f64` goes out typed `real`); the store's `NullableF64` does, on both back ends.
#[tokio::test]
async fn a_null_float_then_a_number_bind_on_one_connection_on_both_back_ends() {
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}?mode=rwc", dir.path().join("f.db").display());
    let postgres = pg::server().new_database("nullable_f64");
    for url in [sqlite.as_str(), postgres.as_str()] {
        let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
        sqlx::query("CREATE TABLE burns (n BIGINT NOT NULL, burn DOUBLE PRECISION)")
            .execute(&mut conn)
            .await
            .unwrap();
        let values = [None, Some(1.5), None, Some(2.25)];
        for (n, v) in values.iter().enumerate() {
            sqlx::query("INSERT INTO burns (n, burn) VALUES ($1, $2)")
                .bind(n as i64)
                .bind(NullableF64(*v))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{url}: binding {v:?}: {e}"));
        }
        let read: Vec<Option<f64>> = sqlx::query_scalar("SELECT burn FROM burns ORDER BY n")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        assert_eq!(read, values, "{url}");

        let plain = "UPDATE burns SET burn = $1 WHERE n = 0";
        sqlx::query(plain)
            .bind(None::<f64>)
            .execute(&mut conn)
            .await
            .unwrap();
        let then = sqlx::query(plain).bind(Some(3.5)).execute(&mut conn).await;
        if url.starts_with("postgres") {
            let e = then.expect_err(
                "sqlx now sends a NULL f64 as it should: NullableF64 can go (see its file)",
            );
            assert!(
                e.to_string().contains("incorrect binary data format"),
                "{e}"
            );
        } else {
            then.unwrap();
        }
    }
}

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

/// A panel's settings: watching `repo_url` (polled once an hour: webhooks bring commits in),
/// AWS at `aws`, on the database at `url`, with more settings.
fn replica(repo_url: &str, aws: Option<&str>, url: &str, more: &[(&str, &str)]) -> Options {
    let mut env = tierdeck_tests::watching_env(repo_url, 3600, aws, more);
    env.push(("TIERDECK_DATABASE__URL".to_owned(), url.to_owned()));
    Options { env }
}

/// Two replicas of one panel on a new PostgreSQL database named `db`.
async fn two_replicas(
    repo_url: &str,
    aws: Option<&str>,
    db: &str,
    more: &[(&str, &str)],
) -> (TestApp, TestApp) {
    let url = pg::server().new_database(db);
    let a = TestApp::spawn_with(replica(repo_url, aws, &url, more)).await;
    let b = TestApp::spawn_with(replica(repo_url, aws, &url, more)).await;
    (a, b)
}

/// Approves change `id` as `api`.
async fn approve(api: &tierdeck_tests::Api, id: i64) {
    let res = api
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

/// What `/healthz` says on `base` (`ok BACKEND leader|follower`).
async fn health(base: &str) -> String {
    match reqwest::get(format!("{base}/healthz")).await {
        Ok(res) => res.text().await.unwrap_or_default(),
        Err(e) => format!("unreachable: {e}"),
    }
}

/// Asks `app` to fetch, as the Git host's push webhook does.
async fn push_hook(base: &str) {
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v1/hooks/git"))
        .header("X-GitHub-Event", "push")
        .header("X-Gitlab-Token", tierdeck_tests::WEBHOOK_SECRET)
        .body(r#"{"ref":"refs/heads/main"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
}

#[tokio::test]
async fn one_replica_leads_a_webhook_to_a_follower_makes_it_fetch_and_a_follower_takes_over_after_kill_9(
) {
    use tierdeck_tests::git::{SpecRepo, SEUNG};
    let repo = SpecRepo::petclinic();
    let url = pg::server().new_database("failover");
    let lease = [("TIERDECK_DATABASE__LEADER_LEASE_SECS", "3")];
    let a = TestApp::spawn_with(replica(&repo.url(), None, &url, &lease)).await;
    let said = tierdeck_tests::wait_for("A to lead", 10, || async {
        Some(health(&a.base).await).filter(|h| h.ends_with("leader\n"))
    })
    .await;
    assert_eq!(said, "ok postgres leader\n");
    let b = TestApp::spawn_with(replica(&repo.url(), None, &url, &lease)).await;
    tierdeck_tests::wait_for("B to say it follows", 10, || async {
        Some(health(&b.base).await).filter(|h| h == "ok postgres follower\n")
    })
    .await;
    let admin = b.api_as("root", "admin").await;
    let ops = b.api_as("ops", "operator").await;
    ops.change_for("prod", &repo.head()).await;

    // Both replicas listed, A leading.
    let cluster = admin.get_json("/api/v1/cluster").await;
    assert_eq!(cluster["backend"], "postgres");
    let replicas = cluster["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 2, "{cluster}");
    let leaders: Vec<_> = replicas.iter().filter(|r| r["leading"] == true).collect();
    assert_eq!(leaders.len(), 1, "{cluster}");
    assert_eq!(cluster["leader"]["replica_id"], leaders[0]["id"]);
    assert_ne!(
        cluster["this_replica"], leaders[0]["id"],
        "B answered, A leads"
    );
    let first_term = cluster["leader"]["term"].as_i64().unwrap();

    // A webhook that reaches the follower: the leader fetches.
    let bigger = repo.commit(
        SEUNG,
        "Larger database",
        repo.replace_in(
            "environments/prod/database.yaml",
            "db.t3.medium",
            "db.t3.large",
        ),
    );
    push_hook(&b.base).await;
    ops.change_for("prod", &bigger).await;

    // The leader dies: B leads within the lease and fetches on the next webhook.
    let a_pid = a.pid().expect("A runs");
    let killed = Instant::now();
    std::process::Command::new("kill")
        .args(["-9", &a_pid.to_string()])
        .status()
        .unwrap();
    tierdeck_tests::wait_for("B to lead", 10, || async {
        Some(health(&b.base).await).filter(|h| h.ends_with("leader\n"))
    })
    .await;
    eprintln!(
        "failover: B led {} ms after A was killed (lease 3 s, looks every 1 s)",
        killed.elapsed().as_millis()
    );
    let cluster = admin.get_json("/api/v1/cluster").await;
    assert_eq!(cluster["leader"]["replica_id"], cluster["this_replica"]);
    assert!(cluster["leader"]["term"].as_i64().unwrap() > first_term);
    let smaller = repo.commit(
        SEUNG,
        "Back to the medium database",
        repo.replace_in(
            "environments/prod/database.yaml",
            "db.t3.large",
            "db.t3.medium",
        ),
    );
    push_hook(&b.base).await;
    ops.change_for("prod", &smaller).await;
    drop(a);
}

#[tokio::test]
async fn two_replicas_asked_to_apply_one_change_at_once_run_it_once_and_the_other_answers_409() {
    use tierdeck_tests::aws::FaultProxy;
    use tierdeck_tests::git::SpecRepo;
    let moto = tierdeck_tests::Moto::sandboxed().await;
    let proxy = FaultProxy::start(&moto.url).await;
    let repo = SpecRepo::petclinic();
    let (a, b) = two_replicas(&repo.url(), Some(&proxy.url), "apply_at_once", &[]).await;
    let ann = a.api_as("ann", "approver").await;
    let olga_a = a.api_as("olga", "operator").await;
    let olga_b = tierdeck_tests::Api {
        base: b.base.clone(),
        ..olga_a.clone()
    };
    let id = ann.change_for("staging", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    ann.planned(id).await;
    approve(&ann, id).await;

    let path = format!("/api/v1/changes/{id}/apply");
    let (on_a, on_b) = tokio::join!(olga_a.post(&path), olga_b.post(&path));
    let mut statuses = [on_a.status().as_u16(), on_b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [202, 409], "one runs, the other is refused");
    tierdeck_tests::wait_for("the apply", 90, || async {
        (ann.status_of(id).await == "applied").then_some(())
    })
    .await;
    let d = ann.get_json(&format!("/api/v1/changes/{id}")).await;
    assert_eq!(d["apply"]["status"], "applied", "{:#}", d["apply"]);
    let runs = pg::server().psql(
        "apply_at_once",
        &format!("SELECT COUNT(*) FROM apply_runs WHERE change_id = {id}"),
    );
    assert_eq!(runs.trim(), "1", "one run");
    let verify = b.cli(&["audit", "verify"], None).await;
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

/// A percentile of `ms` (sorted).
fn percentile(ms: &[u128], p: f64) -> u128 {
    ms[((ms.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test]
async fn fifty_writers_over_two_replicas_for_thirty_seconds_lose_nothing_and_keep_one_chain() {
    use tierdeck_tests::git::SpecRepo;
    let moto = tierdeck_tests::Moto::sandboxed().await;
    let repo = SpecRepo::petclinic();
    let (a, b) = two_replicas(&repo.url(), Some(&moto.url), "fifty_writers", &[]).await;
    let bases = [a.base.clone(), b.base.clone()];
    let first = a.api_as("w0", "approver").await;
    let id = first.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    let mut writers = vec![first];
    for i in 1..50 {
        writers.push(a.api_as(&format!("w{i}"), "approver").await);
    }
    let secs = std::env::var("TIERDECK_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30u64);
    let started = Instant::now();
    let tasks: Vec<_> = writers
        .into_iter()
        .enumerate()
        .map(|(i, mut api)| {
            // Alternate replicas; a sixth of the writers sign in, the rest approve once and
            // comment.
            api.base = bases[i % 2].clone();
            let base = api.base.clone();
            tokio::spawn(async move {
                let mut done = (0u64, 0u64, 0u64);
                let mut ms = Vec::new();
                let mut approved = false;
                while started.elapsed() < Duration::from_secs(secs) {
                    let t = Instant::now();
                    if i % 6 == 0 {
                        let c = Client::new(&base);
                        let res = c.login(&format!("w{i}"), tierdeck_tests::PASSWORD).await;
                        assert!(res.status().is_redirection(), "sign-in: {}", res.status());
                        done.0 += 1;
                    } else if !approved {
                        let res = api
                            .post_json(
                                &format!("/api/v1/changes/{id}/approve"),
                                serde_json::json!({}),
                            )
                            .await;
                        // The plan may not be made yet: 409 until it is.
                        if res.status() == 200 {
                            approved = true;
                            done.1 += 1;
                        } else {
                            assert_eq!(res.status(), 409, "{}", res.text().await.unwrap());
                        }
                    } else {
                        let res = api
                            .post_json(
                                &format!("/api/v1/changes/{id}/comments"),
                                serde_json::json!({ "comment": format!("w{i} #{}", done.2) }),
                            )
                            .await;
                        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
                        done.2 += 1;
                    }
                    ms.push(t.elapsed().as_millis());
                }
                (done, ms)
            })
        })
        .collect();
    let (mut sign_ins, mut approvals, mut comments, mut ms) = (0, 0, 0, Vec::new());
    for t in tasks {
        let ((s, ap, c), m) = t.await.unwrap();
        sign_ins += s;
        approvals += ap;
        comments += c;
        ms.extend(m);
    }
    ms.sort();
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "50 writers on 2 replicas for {elapsed:.1} s: {} writes ({:.0}/s): {sign_ins} sign-ins, {approvals} approvals, {comments} comments; latency p50 {} ms, p99 {} ms, max {} ms",
        ms.len(),
        ms.len() as f64 / elapsed,
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms.last().unwrap()
    );
    // Nothing lost: every answered write is in the store and in the chain.
    let count = |sql: &str| -> u64 {
        pg::server()
            .psql("fifty_writers", sql)
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(
        count(&format!(
            "SELECT COUNT(*) FROM reviews WHERE change_id = {id} AND verdict = 'comment'"
        )),
        comments
    );
    assert_eq!(
        count(&format!(
            "SELECT COUNT(*) FROM reviews WHERE change_id = {id} AND verdict = 'approve'"
        )),
        approvals
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM audit_events WHERE action = 'login.ok'"),
        sign_ins
    );
    let verify = b.cli(&["audit", "verify"], None).await;
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    // The overview's throughput on one replica, then on both.
    let c = Client::new(&a.base);
    let _ = c.login("w1", tierdeck_tests::PASSWORD).await;
    for (label, targets) in [
        ("one replica", vec![a.base.clone()]),
        ("two replicas", bases.to_vec()),
    ] {
        let window = Duration::from_secs(5);
        let t0 = Instant::now();
        let workers: Vec<_> = (0..16)
            .map(|k| {
                let http = c.http.clone();
                let base = targets[k % targets.len()].clone();
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while t0.elapsed() < window {
                        let res = http.get(format!("{base}/")).send().await.unwrap();
                        let status = res.status();
                        let body = res.text().await.unwrap_or_default();
                        assert_eq!(status, 200, "GET {base}/: {body}");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut n = 0;
        for w in workers {
            n += w.await.unwrap();
        }
        eprintln!(
            "the overview on {label}: {:.0} requests/s (16 connections, {} s)",
            n as f64 / t0.elapsed().as_secs_f64(),
            window.as_secs()
        );
    }
}

#[tokio::test]
async fn an_apply_whose_replica_is_killed_is_interrupted_by_the_other_and_its_lock_freed() {
    use tierdeck_tests::aws::{Fault, FaultProxy};
    use tierdeck_tests::git::SpecRepo;
    let moto = tierdeck_tests::Moto::sandboxed().await;
    let proxy = FaultProxy::start(&moto.url).await;
    let repo = SpecRepo::petclinic();
    let (a, b) = two_replicas(
        &repo.url(),
        Some(&proxy.url),
        "killed_during_apply",
        &[
            ("TIERDECK_DATABASE__LEADER_LEASE_SECS", "3"),
            ("TIERDECK_AWS__ATTEMPT_TIMEOUT_SECS", "600"),
        ],
    )
    .await;
    let ann = a.api_as("ann", "approver").await;
    let olga = a.api_as("olga", "operator").await;
    let id = ann.change_for("staging", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    ann.planned(id).await;
    approve(&ann, id).await;

    // Every write AWS is asked for hangs: the apply stays on its first step.
    for action in [
        "UpdateAutoScalingGroup",
        "PutScheduledUpdateGroupAction",
        "PutScalingPolicy",
        "ModifyDBInstance",
        "AuthorizeSecurityGroupIngress",
    ] {
        proxy.fail(action, Fault::Hang, None);
    }
    let res = olga.post(&format!("/api/v1/changes/{id}/apply")).await;
    assert_eq!(res.status(), 202);
    let holder = tierdeck_tests::wait_for("a replica to hold the lock", 60, || async {
        let pid = pg::server().psql(
            "killed_during_apply",
            "SELECT holder_pid FROM environment_locks WHERE environment = 'staging'",
        );
        pid.trim().parse::<u32>().ok()
    })
    .await;
    let (dead, survivor) = if Some(holder) == a.pid() {
        (a, b)
    } else {
        assert_eq!(Some(holder), b.pid(), "the lock's holder is one of the two");
        (b, a)
    };
    std::process::Command::new("kill")
        .args(["-9", &holder.to_string()])
        .status()
        .unwrap();
    proxy.heal();
    let killed = Instant::now();

    // The survivor leads, takes the job again when its lease runs out, and finds the run cut
    // short: interrupted, the lock free, one chain.
    let ann = tierdeck_tests::Api {
        base: survivor.base.clone(),
        ..ann
    };
    tierdeck_tests::wait_for("the survivor to lead", 10, || async {
        Some(health(&survivor.base).await).filter(|h| h.ends_with("leader\n"))
    })
    .await;
    let d = tierdeck_tests::wait_for("the run to be interrupted", 150, || async {
        let d = ann.get_json(&format!("/api/v1/changes/{id}")).await;
        (d["status"] == "interrupted").then_some(d)
    })
    .await;
    eprintln!(
        "the killed replica's apply was interrupted {} s after the kill",
        killed.elapsed().as_secs()
    );
    assert_eq!(d["apply"]["status"], "interrupted", "{:#}", d["apply"]);
    let locks = pg::server().psql(
        "killed_during_apply",
        "SELECT COUNT(*) FROM environment_locks WHERE environment = 'staging'",
    );
    assert_eq!(locks.trim(), "0", "the lock is free");
    let verify = survivor.cli(&["audit", "verify"], None).await;
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    drop(dead);
}
