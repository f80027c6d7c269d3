//! A real browser (headless Chromium through chromedriver): sign in through the form, see your
//! name, move between pages, sign out; the page hydrates and the console stays clean.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use tierdeck_tests::{free_port, wait_for, workspace, TestApp, NO_APPROVAL_FLOOR, PASSWORD};
use tokio::process::{Child, Command};

struct Browser {
    client: Client,
    driver_url: String,
    _driver: Child,
    _profile: tempfile::TempDir,
}

fn program(env: &str, default: &str) -> PathBuf {
    std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

impl Browser {
    async fn start() -> Browser {
        let port = free_port().unwrap();
        let driver_bin = program("CHROMEDRIVER", "/usr/bin/chromedriver");
        assert!(
            driver_bin.exists(),
            "{} is missing: install chromium-driver",
            driver_bin.display()
        );
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting chromedriver");
        let driver_url = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": program("CHROME_BIN", "/usr/bin/chromium"),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-quic", "--no-first-run", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver_url)
            .await
            .expect("a chromedriver session");
        Browser {
            client,
            driver_url,
            _driver: driver,
            _profile: profile,
        }
    }

    /// Scrolls the element `css` to the top of the window (for a screenshot of one section).
    async fn scroll_to(&self, css: &str) {
        self.client
            .execute(
                "document.querySelector(arguments[0]).scrollIntoView({block: 'start'})",
                vec![json!(css)],
            )
            .await
            .unwrap();
    }

    /// Goes to `url` and waits until the page is hydrated.
    async fn open(&self, url: &str) {
        self.client.goto(url).await.unwrap();
        self.hydrated().await;
    }

    /// Waits until the page is hydrated (the app marks `<body data-hydrated>`).
    async fn hydrated(&self) {
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("body[data-hydrated='true']"))
            .await
            .expect("the page hydrates");
    }

    async fn text(&self, css: &str) -> String {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .unwrap()
    }

    /// The text of the first element matching `css` now (empty when there is none), read in
    /// one script call so an element re-rendered meanwhile cannot go stale.
    async fn text_now(&self, css: &str) -> String {
        self.client
            .execute(
                "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';",
                vec![json!(css)],
            )
            .await
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn type_into_css(&self, css: &str, text: &str) {
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        field.send_keys(text).await.unwrap();
    }

    async fn type_into(&self, id: &str, text: &str) {
        let field = self
            .client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("#{id}: {e}"));
        field.send_keys(text).await.unwrap();
    }

    async fn click(&self, locator: Locator<'_>) {
        let element = self
            .client
            .find(locator)
            .await
            .unwrap_or_else(|e| panic!("{locator:?}: {e}"));
        element.click().await.unwrap();
    }

    async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    async fn screenshot(&self, name: &str) {
        let dir = workspace().join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Browser console entries at SEVERE level since the last call (chromedriver's log endpoint).
    async fn console_errors(&self) -> Vec<String> {
        let id = self.client.session_id().await.unwrap().unwrap();
        let res: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/session/{id}/se/log", self.driver_url))
            .json(&json!({ "type": "browser" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        res["value"]
            .as_array()
            .expect("log entries")
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

/// Opens `path` (anonymous people land on the sign-in form), signs in as `user` and waits for
/// the hydrated page at `path`.
async fn sign_in_at(b: &Browser, base: &str, path: &str, user: &str) {
    b.open(&format!("{base}/login?next={}", urlencoding::encode(path)))
        .await;
    b.type_into("username", user).await;
    b.type_into("password", PASSWORD).await;
    b.click(Locator::Css("form button[type=submit]")).await;
    b.client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_url(&format!("{base}{path}").parse().unwrap())
        .await
        .expect("back to the page asked for");
    b.hydrated().await;
}

/// Clicks a link by its text and waits for the page's heading.
async fn navigate(b: &Browser, link: &str, heading: &str) {
    b.click(Locator::LinkText(link)).await;
    let mut h1 = String::new();
    for _ in 0..50 {
        h1 = b.text("main h1").await;
        if h1 == heading {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("after clicking {link}: heading {h1:?}, expected {heading:?}");
}

#[tokio::test]
async fn sign_in_move_between_pages_and_sign_out_in_a_real_browser() {
    let app = TestApp::spawn().await;
    app.add_user("seo", "admin").await;
    let b = Browser::start().await;

    b.client.goto(&format!("{}/audit", app.base)).await.unwrap();
    assert_eq!(
        b.path().await,
        "/login",
        "anonymous people are sent to sign in"
    );
    b.hydrated().await;
    b.screenshot("login").await;

    b.type_into("username", "seo").await;
    b.type_into("password", PASSWORD).await;
    b.click(Locator::Css("form button[type=submit]")).await;

    b.client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_url(&format!("{}/audit", app.base).parse().unwrap())
        .await
        .expect("back to the page asked for");
    b.hydrated().await;
    assert_eq!(b.text(".user-name").await, "seo");
    assert_eq!(b.text(".whoami .role").await.to_lowercase(), "admin");
    assert!(b.text("table.audit").await.contains("login.ok"));
    b.screenshot("audit").await;

    // Client-side navigation through the menu, once hydrated.
    navigate(&b, "Overview", "Overview").await;
    b.screenshot("overview").await;
    // A phone-sized window: the navigation wraps, nothing overflows sideways.
    b.client.set_window_size(390, 844).await.unwrap();
    let overflow = b
        .client
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        overflow,
        serde_json::Value::Bool(true),
        "the page fits a phone's width"
    );
    b.screenshot("overview-phone").await;
    b.client.set_window_size(1280, 900).await.unwrap();
    navigate(&b, "Changes", "Changes").await;
    navigate(&b, "Environments", "Environments").await;
    navigate(&b, "Scaling", "Scaling").await;
    navigate(&b, "SLO", "SLO").await;
    navigate(&b, "Admin", "Users").await;
    assert!(b.text("table.users").await.contains("seo"));
    b.screenshot("admin").await;
    b.click(Locator::Css("a.user")).await;
    assert_eq!(b.text("main h1").await, "Your account");
    b.screenshot("account").await;

    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");

    b.click(Locator::Css(".whoami button")).await;
    b.client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_url(&format!("{}/login", app.base).parse().unwrap())
        .await
        .expect("signed out");
    b.hydrated().await;
    b.client.goto(&format!("{}/", app.base)).await.unwrap();
    assert_eq!(b.path().await, "/login", "the session is gone");
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    b.client.close().await.unwrap();
}

/// Waits for the Admin page's users table, loaded again in the browser, to show `text`.
async fn users_table_shows(b: &Browser, text: &str) {
    for _ in 0..50 {
        if b.text("table.users").await.contains(text) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the users table does not show {text}: {}",
        b.text("table.users").await
    );
}

#[tokio::test]
async fn an_admin_creates_a_user_through_the_hydrated_form() {
    let app = TestApp::spawn().await;
    app.add_user("seo", "admin").await;
    let b = Browser::start().await;
    sign_in_at(&b, &app.base, "/admin", "seo").await;
    b.type_into("new-name", "jin").await;
    b.type_into("new-email", "jin@example.com").await;
    b.type_into("new-password", "a long enough password").await;
    b.click(Locator::Css("#new-role option[value=approver]"))
        .await;
    b.click(Locator::XPath("//button[text()='Create user']"))
        .await;
    assert_eq!(b.text(".notice.ok").await, "Created jin (approver).");
    // The list refreshes without a reload.
    users_table_shows(&b, "jin@example.com").await;
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    b.client.close().await.unwrap();
}

#[tokio::test]
async fn an_admin_sets_a_users_email_on_the_admin_page() {
    let app = TestApp::spawn().await;
    app.add_user("seo", "admin").await;
    // An approver made without an address cannot approve; the refusal sends an admin here.
    app.add_user_as("jin", "approver", None).await;
    let b = Browser::start().await;
    sign_in_at(&b, &app.base, "/admin", "seo").await;
    b.type_into("email-jin", "Jin@Example.com").await;
    b.click(Locator::XPath(
        "//tr[th='jin']//button[text()='Set e-mail']",
    ))
    .await;
    assert_eq!(
        b.text(".notice.ok").await,
        "jin's e-mail is now jin@example.com."
    );
    users_table_shows(&b, "jin@example.com").await;
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    b.client.close().await.unwrap();
    let out = app.cli(&["user", "list"], None).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("jin@example.com"));
}

#[tokio::test]
async fn commit_messages_and_file_names_render_as_text_never_as_html() {
    use tierdeck_tests::git::{SpecRepo, SEUNG};
    let repo = SpecRepo::petclinic();
    let payload_file = "environments/prod/<img src=x onerror=window.__xss=3>.yaml";
    let commit = repo.commit(
        SEUNG,
        "<script>window.__xss=1</script> raise <img src=x onerror=\"window.__xss=2\"> peak",
        |work| std::fs::write(work.join(payload_file), "# notes only\n").unwrap(),
    );
    let app = TestApp::watching(&repo.url(), 3600, None).await;
    app.add_user("seo", "viewer").await;
    let api = app.api_as("ops", "operator").await;
    let change = api.change_for("prod", &commit).await;

    let b = Browser::start().await;
    sign_in_at(&b, &app.base, &format!("/changes/{}", change["id"]), "seo").await;
    let message = b.text(".commit pre.message").await;
    assert!(
        message.contains("<script>window.__xss=1</script>"),
        "{message}"
    );
    assert!(b.text("#files-h").await.starts_with("Files"));
    let files = b
        .client
        .find(Locator::Css("details.file-diff summary code"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        files.contains("<img src=x onerror=window.__xss=3>.yaml"),
        "{files}"
    );
    let xss = b
        .client
        .execute("return window.__xss === undefined;", vec![])
        .await
        .unwrap();
    assert_eq!(xss, serde_json::Value::Bool(true), "no payload ran");
    b.screenshot("change").await;

    // The overview and the environment page with a repository.
    navigate(&b, "Overview", "Overview").await;
    b.screenshot("overview-repo").await;
    navigate(&b, "Environments", "Environments").await;
    b.click(Locator::LinkText("prod")).await;
    for _ in 0..50 {
        if b.text("main h1").await == "Environment prod" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(b.text("main").await.contains("petclinic-prod-was"));
    b.screenshot("environment").await;
    // The schedule preview, scrolled into view.
    b.client
        .execute(
            "document.getElementById('preview-h').scrollIntoView(); return true;",
            vec![],
        )
        .await
        .unwrap();
    assert!(b
        .text_now("table.schedule")
        .await
        .contains("18:50 Asia/Seoul"));
    b.screenshot("schedule-preview").await;
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    b.client.close().await.unwrap();
}

#[tokio::test]
async fn an_operator_applies_a_change_and_watches_its_steps_without_reloading() {
    use tierdeck_tests::aws::{Fault, FaultProxy, ScalingActivity};
    use tierdeck_tests::git::SpecRepo;
    use tierdeck_tests::Moto;
    let moto = Moto::start().await;
    moto.sandbox(&workspace().join("examples/petclinic")).await;
    // The database call's first attempt hangs until it times out: the page has time to show
    // the run half done.
    let proxy = FaultProxy::start(&moto.url).await;
    proxy.fail("ModifyDBInstance", Fault::Hang, Some(1));
    // Auto Scaling's record: a scheduled pre-scale 40 minutes ago (its cause names the
    // action) and a CPU scale-out after it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    proxy.scaling_activities(vec![
        ScalingActivity::scheduled(
            "prescale",
            "petclinic-prod-web",
            "web-prescale",
            now - 40 * 60 - 12,
            2,
            4,
        ),
        ScalingActivity::alarmed(
            "scale-out",
            "petclinic-prod-web",
            ("cpu-high", "scale-out"),
            now - 20 * 60,
            4,
            5,
        ),
    ]);
    let repo = SpecRepo::petclinic_ungated();
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&proxy.url),
        &[
            NO_APPROVAL_FLOOR,
            ("TIERDECK_AWS__ATTEMPT_TIMEOUT_SECS", "4"),
        ],
    )
    .await;
    app.add_user("olga", "operator").await;
    let api = app.api_as("ops", "operator").await;
    let id = api.change_for("prod", &repo.head()).await["id"].clone();
    api.planned(&id).await;

    let b = Browser::start().await;
    sign_in_at(&b, &app.base, &format!("/changes/{id}"), "olga").await;
    assert_eq!(b.text("#apply-h").await, "Apply");
    b.client
        .execute("window.__same_page = true; return true;", vec![])
        .await
        .unwrap();
    b.click(Locator::XPath("//button[normalize-space()='Apply']"))
        .await;
    // Half way: the steps before the database are done, the database call runs.
    // Read in one script call: the section re-renders every second, so an element found in
    // one call may be gone in the next.
    let mut seen = Vec::new();
    for _ in 0..200 {
        let run = b.text_now("p.run").await;
        if !run.is_empty() && !seen.contains(&run) {
            seen.push(run.clone());
        }
        if run.contains("applied") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        seen.iter()
            .any(|r| r.contains("applying — 35 of 36 steps done")),
        "{seen:#?}"
    );
    assert!(
        seen.last()
            .unwrap()
            .contains("applied — 36 of 36 steps done"),
        "{seen:#?}"
    );
    let same = b
        .client
        .execute("return window.__same_page === true;", vec![])
        .await
        .unwrap();
    assert_eq!(same, serde_json::Value::Bool(true), "no reload");
    // The page reloads the change itself when the run ends.
    wait_for("the status badge to say applied", 10, || async {
        let h1 = b.text_now("main h1").await;
        h1.contains("applied").then_some(())
    })
    .await;
    b.screenshot("change-applied").await;
    assert_eq!(b.console_errors().await, Vec::<String>::new());
    // The scaling page has the apply, and the scheduled pre-scale Auto Scaling reported as
    // observed; nothing is expected before the apply put the schedule in AWS.
    let scaling = format!("{}/scaling?env=prod&range=1h", app.base);
    b.open(&scaling).await;
    wait_for("the activities read", 30, || async {
        if b.text_now("table.activities")
            .await
            .contains("web-prescale")
        {
            return Some(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        b.open(&scaling).await;
        None
    })
    .await;
    assert!(b
        .text_now("div.charts")
        .await
        .contains("petclinic-prod-web"));
    let marks = b
        .client
        .execute(
            "return [...document.querySelectorAll('g.marker.scheduled')].map(g => g.getAttribute('class') + ': ' + g.querySelector('title').textContent);",
            vec![],
        )
        .await
        .unwrap();
    let marks: Vec<String> = serde_json::from_value(marks).unwrap();
    assert!(
        marks
            .iter()
            .any(|m| m.starts_with("marker scheduled observed: ")
                && m.contains("web-prescale (observed")),
        "{marks:#?}"
    );
    let history = api
        .get_json("/api/v1/environments/prod/scaling?hours=1")
        .await;
    let applied_at = history["applies"][0]["at_unix"].as_i64().unwrap();
    for m in history["scheduled"].as_array().unwrap() {
        assert!(
            m["seen"] == "observed" || m["at_unix"].as_i64().unwrap() >= applied_at,
            "an expected firing before the apply: {m}"
        );
    }
    assert!(b.text_now("table.activities").await.contains("40 min ago"));
    b.screenshot("scaling").await;
    assert_eq!(b.console_errors().await, Vec::<String>::new());
    b.client.close().await.unwrap();
}

#[tokio::test]
async fn an_operator_sees_a_step_settle_and_the_watch_run_then_clicks_revert() {
    use tierdeck_tests::aws::FaultProxy;
    use tierdeck_tests::git::{SpecRepo, SEUNG};
    use tierdeck_tests::prom::{LiveTraffic, Prometheus};
    use tierdeck_tests::Moto;
    let traffic = LiveTraffic::start(100.0).await;
    let prom = Prometheus::scraping("petclinic", &traffic.target).await;
    let moto = Moto::sandboxed().await;
    // RDS keeps a modified database `modifying` for 4 s, as real RDS does for minutes.
    let proxy = FaultProxy::start(&moto.url).await;
    proxy.rds_modifies_for(Duration::from_secs(4));
    let repo = SpecRepo::petclinic_ungated();
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&proxy.url),
        &[
            NO_APPROVAL_FLOOR,
            ("TIERDECK_PROMETHEUS__URL", &prom.url),
            ("TIERDECK_APPLY__WATCH_INTERVAL_SECS", "1"),
        ],
    )
    .await;
    app.add_user("olga", "operator").await;
    let api = app.api_as("ops", "operator").await;
    let first = api.change_for("prod", &repo.head()).await["id"].clone();
    api.planned(&first).await;
    let res = api.post(&format!("/api/v1/changes/{first}/apply")).await;
    assert_eq!(res.status(), 202);
    wait_for("the first apply to end", 60, || async {
        let d = api.get_json(&format!("/api/v1/changes/{first}")).await;
        (d["status"] == "applied").then_some(())
    })
    .await;
    let base = repo.head();
    let bigger = repo.commit(
        SEUNG,
        "Prod: a bigger database",
        repo.replace_in(
            "environments/prod/database.yaml",
            "instance_class: db.t3.medium",
            "instance_class: db.t3.large",
        ),
    );
    assert_eq!(api.post("/api/v1/sync").await.status(), 200);
    let id = api.change_for("prod", &bigger).await["id"].clone();
    api.planned(&id).await;

    let b = Browser::start().await;
    sign_in_at(&b, &app.base, &format!("/changes/{id}"), "olga").await;
    b.click(Locator::XPath("//button[normalize-space()='Apply']"))
        .await;
    // The step settles, live: what it waits for and what RDS shows.
    let settling = wait_for("the step to show it settles", 30, || async {
        let steps = b.text_now("table.steps").await;
        steps
            .contains(
                "settling: waiting for database petclinic-prod-db available with nothing pending",
            )
            .then_some(steps)
    })
    .await;
    assert!(
        settling.contains("AWS shows modifying: instance_class → db.t3.large"),
        "{settling}"
    );
    b.scroll_to("#apply-h").await;
    b.screenshot("change-settling").await;
    // Then applied, and watched: the page follows the watch without a reload.
    let watch = wait_for("the watch to show", 30, || async {
        let w = b.text_now("p.watch").await;
        w.contains("watching — 0 of 15 minutes").then_some(w)
    })
    .await;
    assert!(watch.contains("burn"), "{watch}");
    b.screenshot("change-watching").await;
    // The operator reverts it to the commit before.
    let button = format!("Revert to {}", &base[..10]);
    wait_for("the Revert button", 20, || async {
        b.text_now("#revert-h")
            .await
            .contains("Revert")
            .then_some(())
    })
    .await;
    b.click(Locator::XPath(&format!(
        "//button[normalize-space()='{button}']"
    )))
    .await;
    let notice = wait_for("the revert to be recorded", 20, || async {
        let t = b
            .text_now("section[aria-labelledby='revert-h'] p.notice")
            .await;
        t.contains("Recorded the revert").then_some(t)
    })
    .await;
    let changes = api.changes("prod").await;
    let revert = changes
        .iter()
        .find(|c| c["kind"] == "revert")
        .unwrap_or_else(|| panic!("{changes:#?}"));
    assert_eq!(revert["reverts"], id);
    assert!(
        notice.contains(&format!("change #{}", revert["id"])),
        "{notice}"
    );
    assert_eq!(b.console_errors().await, Vec::<String>::new());
    b.client.close().await.unwrap();
}

/// Clicks the button with this text and waits until `css` shows `expected`.
async fn click_and_see(b: &Browser, button: &str, css: &str, expected: &str) {
    b.click(Locator::XPath(&format!(
        "//button[normalize-space()='{button}']"
    )))
    .await;
    wait_for(&format!("{css} to say {expected:?}"), 20, || async {
        b.text_now(css).await.contains(expected).then_some(())
    })
    .await;
}

#[tokio::test]
async fn two_approvers_approve_in_their_own_sessions_and_an_operator_applies() {
    use tierdeck_tests::git::SpecRepo;
    use tierdeck_tests::Moto;
    let moto = Moto::start().await;
    moto.sandbox(&workspace().join("examples/petclinic")).await;
    let repo = SpecRepo::petclinic_any_time();
    let app = TestApp::watching(&repo.url(), 3600, Some(&moto.url)).await;
    for (name, role) in [
        ("ann", "approver"),
        ("bo", "approver"),
        ("olga", "operator"),
    ] {
        app.add_user(name, role).await;
    }
    let api = app.api_as("ops", "operator").await;
    let id = api.change_for("prod", &repo.head()).await["id"].clone();
    api.planned(&id).await;
    let path = format!("/changes/{id}");

    // The operator sees why there is no Apply button yet.
    let b = Browser::start().await;
    sign_in_at(&b, &app.base, &path, "olga").await;
    assert!(
        b.text_now(".why-not").await.contains("needs 2 approvals"),
        "{}",
        b.text_now("#apply-h + *").await
    );
    b.client.close().await.unwrap();

    for (who, count) in [("ann", "1 of 2"), ("bo", "2 of 2")] {
        let b = Browser::start().await;
        sign_in_at(&b, &app.base, &path, who).await;
        b.type_into_css(
            "textarea[name=comment]",
            &format!("{who}: checked the plan"),
        )
        .await;
        click_and_see(&b, "Approve this plan", "p.approvals-count", count).await;
        assert!(b.text_now("main h1").await.contains(if count == "2 of 2" {
            "approved"
        } else {
            "pending"
        }));
        b.screenshot(&format!("change-approved-by-{who}")).await;
        assert_eq!(b.console_errors().await, Vec::<String>::new());
        b.client.close().await.unwrap();
    }

    let b = Browser::start().await;
    sign_in_at(&b, &app.base, &path, "olga").await;
    // The confirmation restates what will run and its risks.
    let confirm = b.text_now("form.confirm-apply").await;
    assert!(
        confirm.contains("Apply 36 operations to prod."),
        "{confirm}"
    );
    assert!(
        confirm.contains("a class change reboots the database"),
        "{confirm}"
    );
    click_and_see(&b, "Apply", "p.run", "applied — 36 of 36 steps done").await;
    wait_for("the page to show the change applied", 10, || async {
        b.text_now("main h1")
            .await
            .contains("applied")
            .then_some(())
    })
    .await;
    b.screenshot("change-applied-after-approvals").await;
    assert_eq!(b.console_errors().await, Vec::<String>::new());
    b.client.close().await.unwrap();
}

#[tokio::test]
async fn the_slo_page_shows_budgets_and_badges_that_agree_with_them() {
    use tierdeck_tests::cloudwatch::{lb_dimension, put, shop_month, tg_dimension, ShopMetrics};
    use tierdeck_tests::prom::petclinic_panel;
    // The sandbox's load balancers and database behind the tests' proxy, with two days of
    // the shop's CloudWatch figures (the same traffic as Prometheus's).
    let moto = tierdeck_tests::Moto::sandboxed().await;
    let proxy = tierdeck_tests::aws::FaultProxy::start(&moto.url).await;
    let (_prom, data, repo, app) = petclinic_panel(Some(&proxy.url)).await;
    let lb = lb_dimension(&proxy.url, "petclinic-prod-ext-alb").await;
    let tg = tg_dimension(&proxy.url, "petclinic-prod-web-tg").await;
    let shop = ShopMetrics {
        load_balancer: &lb,
        target_group: &tg,
        database: "petclinic-prod-db",
    };
    let (alb, rds) = shop_month(&shop, data.end, 2, (26, 360), data.prod_incident);
    put(&proxy.url, "AWS/ApplicationELB", &alb).await;
    put(&proxy.url, "AWS/RDS", &rds).await;
    app.add_user("vic", "viewer").await;
    let api = app.api_as("ops", "operator").await;
    api.change_for("prod", &repo.head()).await;
    let b = Browser::start().await;
    // Without an environment in the address the page shows the first one, the others a tab
    // away; its times read in the environment's zone, named once.
    sign_in_at(&b, &app.base, "/slo", "vic").await;
    let card = b.text("#slo-availability").await;
    assert!(card.contains("availability"), "{card}");
    assert_eq!(
        b.text_now("nav.env-tabs a[aria-current=page]").await,
        "prod"
    );
    assert!(
        b.text_now("p.zone-note")
            .await
            .contains("Times in Asia/Seoul (KST)"),
        "{}",
        b.text_now("main").await
    );
    // The seed's 259,200 failures allowed, as Prometheus extrapolates them a few minutes
    // past the data's end: the API's figure at the same moment.
    let report = api.get_json("/api/v1/environments/prod/slo").await;
    let allowed = report["slos"][0]["budget"]["allowed_events"]
        .as_f64()
        .unwrap()
        .round() as i64;
    assert!((allowed - 259_200).abs() < 300, "{allowed}");
    let budget = b.text_now("section.slo dl.facts").await;
    assert!(
        budget.contains(&format!("{},{:03}", allowed / 1000, allowed % 1000)),
        "{budget}"
    );
    // prod's availability has budget left and nothing burns: ok. Checkout has no traffic at
    // all: no data, never a green ok.
    assert_eq!(b.text_now("#slo-availability .badge").await, "ok");
    assert_eq!(b.text_now("#slo-checkout-success .badge").await, "no data");
    assert!(b
        .text_now("section[aria-labelledby=slo-checkout-success]")
        .await
        .contains("No requests in the window"));
    b.screenshot("slo").await;
    b.click(Locator::LinkText("staging")).await;
    let mut main = String::new();
    for _ in 0..100 {
        main = b.text_now("main").await;
        if main.contains("Objective 99.5 %") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        main.contains("Objective 99.5 %") && main.contains("Budget left-"),
        "staging's budget, overspent: {main} at {}",
        b.path().await
    );
    // Staging's budget is overspent while nothing burns now: the badge says spent, in the
    // error colour, beside the notice that says so.
    assert_eq!(b.text_now("#slo-availability .badge").await, "spent");
    let class = b
        .client
        .execute(
            "return document.querySelector('#slo-availability .badge').className;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(class, json!("badge slo-spent"));
    assert!(b
        .text_now("section[aria-labelledby=slo-availability]")
        .await
        .contains("The error budget is spent."));
    b.screenshot("slo-staging").await;
    // The overview's SLO line.
    b.open(&format!("{}/", app.base)).await;
    wait_for("the SLO summary", 20, || async {
        b.text_now("ul.slo-summary")
            .await
            .contains("44 % left")
            .then_some(())
    })
    .await;
    // The overview's environment cards carry the same badge: staging's is spent.
    let staging_card = b
        .client
        .execute(
            "return [...document.querySelectorAll('section.env-card')].find(c => c.querySelector('h2 a').textContent === 'staging').querySelector('.badge-link .badge').textContent;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(staging_card, json!("spent"));
    b.screenshot("overview-slo").await;
    // Monitoring, from the same Prometheus.
    b.open(&format!("{}/monitoring?env=prod&range=24h", app.base))
        .await;
    wait_for("the monitoring charts", 20, || async {
        b.text_now("main").await.contains("Tier web").then_some(())
    })
    .await;
    // The load balancers' and the database's charts from CloudWatch, each with its line.
    let main = b.text_now("main").await;
    for text in [
        "Load balancer petclinic-prod-ext-alb",
        "Response time p95",
        "Database petclinic-prod-db",
        "Freeable memory",
        "Target health",
    ] {
        assert!(main.contains(text), "{text}: {main}");
    }
    let lines = b
        .client
        .execute(
            "return [...document.querySelectorAll('figure.chart')].filter(f => f.textContent.includes('Response time p95') || f.textContent.includes('Read IOPS')).map(f => f.querySelectorAll('path').length > 0);",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        lines
            .as_array()
            .is_some_and(|l| !l.is_empty() && l.iter().all(|x| x == &json!(true))),
        "{lines}"
    );
    // The error ratio lies near zero: its axis reads 0–0.2 %, not 0–100 %.
    let ticks = b
        .client
        .execute(
            "return [...document.querySelectorAll('figure.chart')].find(f => f.textContent.includes('Error ratio')).querySelectorAll('.y-tick').length;",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        (3..=5).contains(&ticks.as_u64().unwrap()),
        "3 to 5 ticks: {ticks}"
    );
    let top = b
        .client
        .execute(
            "const t = [...document.querySelectorAll('figure.chart')].find(f => f.textContent.includes('Error ratio')).querySelectorAll('.y-tick'); return t[t.length - 1].textContent;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(top, json!("0.20 %"));
    // Tick labels keep one size whatever the card's width.
    let sizes = b
        .client
        .execute(
            "return [...new Set([...document.querySelectorAll('.y-tick, .x-tick')].map(e => getComputedStyle(e).fontSize))];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(sizes, json!(["11px"]));
    b.screenshot("monitoring").await;
    // Down the page: the load balancers, their targets and the database.
    b.client
        .execute(
            "document.getElementById('lb-petclinic-prod-ext-alb').scrollIntoView();",
            vec![],
        )
        .await
        .unwrap();
    b.screenshot("monitoring-cloudwatch").await;
    assert_eq!(b.console_errors().await, Vec::<String>::new());
    b.client.close().await.unwrap();
}

#[tokio::test]
async fn the_environment_draws_its_tier_chain_and_a_change_says_which_paths_it_opens() {
    use tierdeck_tests::git::{SpecRepo, SEUNG};
    let repo = SpecRepo::petclinic();
    // Tomcat opened to the world in both layers: a path that skips three tiers.
    let commit = repo.commit(SEUNG, "Let the partner API reach Tomcat directly", |work| {
        let edit = |file: &str, from: &str, to: &str| {
            let path = work.join(file);
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.contains(from), "{file}: {from}");
            std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        };
        edit(
            "environments/prod/security.yaml",
            "description: from the internal ALB }",
            "description: from the internal ALB }\n      - { protocol: tcp, port: 8080, cidr: 0.0.0.0/0, description: the partner API }",
        );
        edit(
            "environments/prod/network.yaml",
            "# the internal ALB to Tomcat, across zones",
            "# the internal ALB to Tomcat, across zones\n      - { rule: 115, protocol: tcp, port: 8080, cidr: 0.0.0.0/0, action: allow }",
        );
        edit(
            "environments/prod/network.yaml",
            "# answers to the web tier",
            "# answers to the web tier\n      - { rule: 105, protocol: tcp, port: 1024-65535, cidr: 0.0.0.0/0, action: allow }",
        );
    });
    let app = TestApp::watching(&repo.url(), 3600, None).await;
    app.add_user("vic", "viewer").await;
    let api = app.api_as("ops", "operator").await;
    let change = api.change_for("prod", &commit).await;
    assert_eq!(
        change["status"], "blocked",
        "open to the world on a private tier"
    );

    let b = Browser::start().await;
    sign_in_at(&b, &app.base, "/environments/prod", "vic").await;
    let links = b.text_now("figure.chain svg").await;
    for label in [
        "internet",
        "external ALB",
        "internal ALB",
        "tcp/80, 443",
        "tcp/3306",
    ] {
        assert!(links.contains(label), "{label} in {links}");
    }
    // The skip is drawn in red, with its port.
    let skip = b.text_now("figure.chain g.skip").await;
    assert!(
        skip.contains("tcp/8080") && skip.contains("the internet reaches the was tier"),
        "{skip}"
    );
    let color = b
        .client
        .execute(
            "return getComputedStyle(document.querySelector('figure.chain g.skip path')).stroke;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(color, json!("rgb(201, 42, 42)"));
    let table = b.text_now("table.reach").await;
    assert!(table.contains("skips a tier"), "{table}");
    b.scroll_to("#reach-h").await;
    b.screenshot("environment-reachability").await;

    // The change's page says what it opens, one sentence each.
    b.open(&format!("{}/changes/{}", app.base, change["id"]))
        .await;
    let said = b.text("ul.reach-changes").await;
    assert!(
        said.contains("The was tier is now reachable from the internet on tcp/8080.")
            && said.contains("(off the chain)"),
        "{said}"
    );
    b.scroll_to("#reach-h").await;
    b.screenshot("change-reachability").await;
    assert_eq!(b.console_errors().await, Vec::<String>::new());
    b.client.close().await.unwrap();
}

/// The whole story: a pushed commit, its change through the webhook, four eyes, an apply
/// watched live, AWS read back, the scaling history and the audit trail; then a commit that
/// breaks a guardrail is blocked.
#[tokio::test]
async fn the_whole_story_from_a_push_to_the_audit_trail() {
    use tierdeck_tests::aws::{query, tag_value};
    use tierdeck_tests::git::{SpecRepo, SEUNG};
    use tierdeck_tests::{Moto, WEBHOOK_SECRET};
    let moto = Moto::sandboxed().await;
    let repo = SpecRepo::petclinic_any_time();
    let app = TestApp::watching(&repo.url(), 3600, Some(&moto.url)).await;
    app.add_user_with_email("seung", "approver", SEUNG.1).await;
    for (name, role) in [
        ("ann", "approver"),
        ("bo", "approver"),
        ("olga", "operator"),
    ] {
        app.add_user(name, role).await;
    }
    // prod was applied before the story starts.
    let ops = app.api_as("ops", "operator").await;
    let ann = app.api_for("ann").await;
    let bo = app.api_for("bo").await;
    let first = ops.change_for("prod", &repo.head()).await["id"].clone();
    ops.planned(&first).await;
    for a in [&ann, &bo] {
        let res = a
            .post_json(&format!("/api/v1/changes/{first}/approve"), json!({}))
            .await;
        assert_eq!(res.status(), 200);
    }
    assert_eq!(
        ops.post(&format!("/api/v1/changes/{first}/apply"))
            .await
            .status(),
        202
    );
    wait_for("prod applied", 60, || async {
        let d = ops.get_json(&format!("/api/v1/changes/{first}")).await;
        (d["status"] == "applied").then_some(())
    })
    .await;

    // Seung pushes: the was tier's evening peak may reach 8. The webhook brings the change.
    let commit = repo.raise_was_peak(SEUNG);
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/hooks/git", app.base))
        .header("X-Gitlab-Event", "Push Hook")
        .header("X-Gitlab-Token", WEBHOOK_SECRET)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let id = ops.change_for("prod", &commit).await["id"].clone();
    ops.planned(&id).await;
    let path = format!("/changes/{id}");

    // The author sees the diffs, the plan and the schedule, and cannot approve.
    let b = Browser::start().await;
    sign_in_at(&b, &app.base, &path, "seung").await;
    let main = b.text_now("main").await;
    assert!(main.contains("max: 8"), "the file diff: {main}");
    assert!(main.contains("was-peak"), "the semantic diff");
    assert!(main.contains("PutScheduledUpdateGroupAction"), "the plan");
    assert!(main.contains("before and after"), "the schedule preview");
    assert!(
        b.text_now(".review-forms")
            .await
            .contains("You wrote this change"),
        "the author is told why there is no Approve button"
    );
    b.screenshot("story-1-author").await;
    b.client.close().await.unwrap();

    // Two approvers, each in their own session.
    for (who, count) in [("ann", "1 of 2"), ("bo", "2 of 2")] {
        let b = Browser::start().await;
        sign_in_at(&b, &app.base, &path, who).await;
        click_and_see(&b, "Approve this plan", "p.approvals-count", count).await;
        b.scroll_to("#reviews-h").await;
        b.screenshot(&format!("story-2-approved-by-{who}")).await;
        b.client.close().await.unwrap();
    }

    // The operator applies and watches the steps.
    let b = Browser::start().await;
    sign_in_at(&b, &app.base, &path, "olga").await;
    assert!(b
        .text_now("form.confirm-apply")
        .await
        .contains("Apply 1 operation to prod."));
    click_and_see(&b, "Apply", "p.run", "applied — 1 of 1 step done").await;
    // A one-step apply ends before the page's first look; the page still reloads the change.
    wait_for("the change reloaded after its apply", 20, || async {
        let card = b.text_now("section[aria-labelledby=apply-h]").await;
        (!card.contains("being applied now")).then_some(())
    })
    .await;
    b.scroll_to("#apply-h").await;
    b.screenshot("story-3-applied").await;

    // AWS now holds the spec's value.
    let actions = query(
        &moto.url,
        "autoscaling",
        "DescribeScheduledActions",
        &[
            ("AutoScalingGroupName", "petclinic-prod-was"),
            ("ScheduledActionNames.member.1", "was-peak"),
        ],
    )
    .await;
    assert_eq!(tag_value(&actions, "MaxSize"), "8");
    // Read back through the AWS SDK (the panel's own adapters): the whole environment equals
    // its spec at the new commit.
    let out = app.cli_plan("prod", &repo.url(), &moto.url).await;
    assert!(out.contains("No changes: prod matches its spec."), "{out}");

    // The scaling history has both applies.
    b.open(&format!("{}/scaling?env=prod&range=1h", app.base))
        .await;
    let history = ops
        .get_json("/api/v1/environments/prod/scaling?hours=1")
        .await;
    let applied: Vec<&Value> = history["applies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["change_id"])
        .collect();
    assert_eq!(applied, [&first, &id]);
    let page = b.client.source().await.unwrap();
    for change in [&first, &id] {
        assert!(
            page.contains(&format!("href=\"/changes/{change}\"")),
            "the chart marks the apply of change {change}"
        );
    }
    b.screenshot("story-4-scaling").await;

    // The audit page shows the trail, and the chain verifies.
    b.open(&format!("{}/audit", app.base)).await;
    let trail = b.text_now("main").await;
    for action in [
        "change.detected",
        "webhook.accepted",
        "change.approved",
        "change.apply_started",
        "aws.call",
        "change.applied",
    ] {
        assert!(trail.contains(action), "{action} in the audit page");
    }
    assert!(
        trail.contains("Audit chain intact"),
        "the page verifies the chain"
    );
    b.screenshot("story-5-audit").await;
    let chain = ops.get_json("/api/v1/audit/verify").await;
    assert_eq!(chain["broken"], Value::Null, "{chain:#}");
    assert!(chain["rows_checked"].as_u64().unwrap() > 40);
    assert_eq!(b.console_errors().await, Vec::<String>::new());

    // A commit that breaks a guardrail is blocked. The operator fetches it from the overview:
    // the repository's card there is an island inside the cards the server keeps rendered.
    let bad = repo.commit(
        SEUNG,
        "One web instance at night is enough",
        repo.replace_in(
            "environments/prod/autoscaling.yaml",
            "name: web-night,      cron: \"0 0 * * *\",   timezone: Asia/Seoul, min: 2,",
            "name: web-night,      cron: \"0 0 * * *\",   timezone: Asia/Seoul, min: 1,",
        ),
    );
    b.open(&format!("{}/", app.base)).await;
    let card = "section[aria-labelledby=repo-h]";
    click_and_see(&b, "Fetch now", card, "1 new change.").await;
    wait_for("the card read again after the fetch", 20, || async {
        let text = b.text_now(card).await;
        text.contains("One web instance at night is enough")
            .then_some(())
    })
    .await;
    let blocked = ops.change_for("prod", &bad).await;
    assert_eq!(blocked["status"], "blocked");
    b.open(&format!("{}/changes/{}", app.base, blocked["id"]))
        .await;
    assert!(b
        .text_now("main")
        .await
        .contains("min 1 is below the guardrail min_instances 2"));
    b.screenshot("story-6-blocked").await;

    // The lists: the story's changes, and the environments with their state.
    b.open(&format!("{}/changes", app.base)).await;
    let list = b.text_now("main").await;
    for status in ["applied", "blocked"] {
        assert!(list.contains(status), "{status} in the list: {list}");
    }
    b.screenshot("changes").await;
    b.open(&format!("{}/environments", app.base)).await;
    let envs = b.text_now("main").await;
    assert!(envs.contains("prod") && envs.contains("staging"), "{envs}");
    b.screenshot("environments").await;
    assert_eq!(b.console_errors().await, Vec::<String>::new());
    b.client.close().await.unwrap();
}

#[tokio::test]
async fn an_admin_imports_an_environment_from_what_runs_previews_it_and_downloads_its_folder() {
    let moto = tierdeck_tests::Moto::start().await;
    tierdeck_tests::shop::build_shop(&moto.url).await;
    let app = TestApp::spawn_with(tierdeck_tests::Options {
        env: vec![("TIERDECK_AWS__ENDPOINT_URL".into(), moto.url.clone())],
    })
    .await;
    app.add_user("seo", "admin").await;
    app.add_user("jeongho", "operator").await;
    let b = Browser::start().await;
    sign_in_at(&b, &app.base, "/environments", "seo").await;
    navigate(
        &b,
        "Import an environment from what runs",
        "Import an environment from what runs",
    )
    .await;
    b.type_into_css("input[name=env]", "prod").await;
    b.type_into_css("input[name=region]", "ap-northeast-2")
        .await;
    b.type_into_css("input[name=value]", "shop-prod-").await;
    b.click(Locator::XPath("//button[text()='Preview']")).await;
    assert_eq!(
        b.text("#round-trip").await,
        "No changes: the spec says what runs."
    );
    b.hydrated().await;
    let page = b.text("main").await;
    for said in [
        "2 Auto Scaling groups, 1 database, 5 security groups, 6 subnets, 3 network ACLs",
        "policy shop-prod-was-network-in of shop-prod-was: target tracking of ASGAverageNetworkIn",
        "[min-instances] group shop-prod-was: min 1 is below the guardrail min_instances 2",
        "environments/prod/autoscaling.yaml",
        "scale_out_above: 50",
    ] {
        assert!(page.contains(said), "{said}: {page}");
    }
    b.screenshot("import").await;
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");

    // The download: the folder as a tar archive, for the admin only.
    let href = b
        .client
        .find(Locator::Css("#import-result a[download]"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .expect("a download link");
    b.client.close().await.unwrap();
    let res = app.login("seo").await.get(&href).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/x-tar");
    let archive = res.bytes().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("prod.tar"), &archive).unwrap();
    let listed = std::process::Command::new("tar")
        .args(["-tf", "prod.tar"])
        .current_dir(dir.path())
        .output()
        .expect("tar");
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout),
        "environments/\nenvironments/prod/\nenvironments/prod/environment.yaml\nenvironments/prod/autoscaling.yaml\nenvironments/prod/database.yaml\nenvironments/prod/security.yaml\nenvironments/prod/network.yaml\n"
    );
    let extracted = std::process::Command::new("tar")
        .args(["-xf", "prod.tar"])
        .current_dir(dir.path())
        .status()
        .expect("tar");
    assert!(extracted.success());
    let v = tierdeck_tests::cli_with(dir.path(), &["validate", "."], None, &[]).await;
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    let res = app.login("jeongho").await.get(&href).await;
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn an_operator_continues_one_rollout_past_its_bake_and_cancels_another_from_the_page() {
    use tierdeck_tests::aws::FaultProxy;
    use tierdeck_tests::git::{SpecRepo, SEUNG};
    use tierdeck_tests::prom::{LiveTraffic, Prometheus};
    use tierdeck_tests::Moto;
    let traffic = LiveTraffic::start(100.0).await;
    let prom = Prometheus::scraping("petclinic", &traffic.target).await;
    let moto = Moto::sandboxed().await;
    // The proxy answers the instance refresh API and replaces instances, a step each 300 ms.
    let proxy = FaultProxy::start(&moto.url).await;
    proxy.refresh_steps_take(Duration::from_millis(300));
    let repo = SpecRepo::petclinic_ungated();
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&proxy.url),
        &[
            NO_APPROVAL_FLOOR,
            ("TIERDECK_PROMETHEUS__URL", &prom.url),
            ("TIERDECK_APPLY__WATCH_INTERVAL_SECS", "1"),
            ("TIERDECK_APPLY__SETTLE_POLL_MAX_SECS", "1"),
        ],
    )
    .await;
    app.add_user("olga", "operator").await;
    let api = app.api_as("ops", "operator").await;
    let first = api.change_for("prod", &repo.head()).await["id"].clone();
    api.planned(&first).await;
    assert_eq!(
        api.post(&format!("/api/v1/changes/{first}/apply"))
            .await
            .status(),
        202
    );
    wait_for("the first apply to end", 90, || async {
        let d = api.get_json(&format!("/api/v1/changes/{first}")).await;
        (d["status"] == "applied").then_some(())
    })
    .await;
    // Each rollout holds at 50 % for half an hour.
    const WEB: &str = "    instance_type: t3.medium\n    cpu_scaling:\n      scale_out_above: 50\n      scale_in_below: 30\n      adjustment: 1\n      cooldown_seconds: 300\n    schedule:\n      - { name: web-night";
    let rolled = WEB.replacen(
        "    instance_type: t3.medium\n",
        "    instance_type: t3.medium\n    image_id: ami-0abcdef1234567890\n    rollout: { checkpoints: [50, 100], bake_minutes: 30 }\n",
        1,
    );
    let b = Browser::start().await;
    let mut signed_in = false;
    for (from, to, button, expected) in [
        (WEB, rolled.as_str(), "Continue now", "applied"),
        (
            "image_id: ami-0abcdef1234567890",
            "image_id: ami-0fedcba9876543210",
            "Cancel",
            "failed",
        ),
    ] {
        let sha = repo.commit(
            SEUNG,
            &format!("Prod: the web tier's new image ({button})"),
            repo.replace_in("environments/prod/autoscaling.yaml", from, to),
        );
        assert_eq!(api.post("/api/v1/sync").await.status(), 200);
        let id = api.change_for("prod", &sha).await["id"].clone();
        api.planned(&id).await;
        if signed_in {
            b.client
                .goto(&format!("{}/changes/{id}", app.base))
                .await
                .unwrap();
        } else {
            sign_in_at(&b, &app.base, &format!("/changes/{id}"), "olga").await;
            signed_in = true;
        }
        b.click(Locator::XPath("//button[normalize-space()='Apply']"))
            .await;
        // The rollout step shows its stage, percentage, instances left and bake time, live.
        let line = wait_for("the rollout to bake", 60, || async {
            let t = b.text_now("table.steps .rollout").await;
            t.starts_with("baking — stage 1 of 2 (to 50 %): 50 % replaced, 1 instance left")
                .then_some(t)
        })
        .await;
        assert!(line.contains("left"), "{line}");
        if button == "Continue now" {
            b.scroll_to("#apply-h").await;
            b.screenshot("change-rollout-baking").await;
        }
        b.click(Locator::XPath(&format!(
            "//button[normalize-space()='{button}']"
        )))
        .await;
        // The server says what happens now.
        wait_for("the rollout action's answer", 20, || async {
            b.text_now("body")
                .await
                .contains("Rollout: the")
                .then_some(())
        })
        .await;
        wait_for(&format!("change {id} to be {expected}"), 60, || async {
            let d = api.get_json(&format!("/api/v1/changes/{id}")).await;
            (d["status"] == expected).then_some(())
        })
        .await;
        let steps = wait_for("the page to show the rollout's end", 20, || async {
            let t = b.text_now("table.steps").await;
            (t.contains("succeeded —") || t.contains("cancelled —")).then_some(t)
        })
        .await;
        let word = if expected == "applied" {
            "succeeded"
        } else {
            "cancelled"
        };
        assert!(steps.contains(word), "{steps}");
    }
    let actions = api.audit_actions("action=rollout.operator").await;
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert_eq!(b.console_errors().await, Vec::<String>::new());
    b.client.close().await.unwrap();
    drop(traffic);
}
