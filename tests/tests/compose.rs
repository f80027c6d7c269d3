//! `compose.yaml`, run on this machine without Docker (there is no Docker engine here): every
//! service's entrypoint and command with its image's environment (the Dockerfile's `ENV`,
//! `ENTRYPOINT` and `CMD` for tierdeck's own images), paths inside the containers mapped to the
//! folders its volumes name and service addresses to loopback ports. moto, promtool, Prometheus
//! and the built binary stand in for their images. What Docker itself does (building images,
//! users, networks, restarts) is not exercised; the commands, paths, addresses, environment and
//! order are.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tierdeck_tests::git::{git_as, SEUNG};
use tierdeck_tests::{binary, free_port, site_root, wait_for, workspace, Client, Moto};
use tokio::process::{Child, Command};
use yaml_rust2::{Yaml, YamlLoader};

/// One service of compose.yaml, its `<<` merge keys applied.
#[derive(Debug, Default)]
struct Service {
    image: String,
    entrypoint: Option<Vec<String>>,
    command: Option<Vec<String>>,
    environment: Vec<(String, String)>,
    /// (host path as written, container path)
    volumes: Vec<(String, String)>,
    /// (service, condition)
    depends_on: Vec<(String, String)>,
    /// `HOST_IP:HOST_PORT:CONTAINER_PORT`
    ports: Vec<String>,
    network_mode: Option<String>,
}

/// `<<` merge keys (compose follows YAML 1.1 there; yaml-rust2 reads them as plain keys).
fn merged(y: &Yaml) -> Yaml {
    match y {
        Yaml::Hash(h) => {
            let mut out = yaml_rust2::yaml::Hash::new();
            if let Some(Yaml::Hash(base)) = h.get(&Yaml::String("<<".into())).map(merged) {
                out.extend(base);
            }
            for (k, v) in h {
                if k.as_str() != Some("<<") {
                    out.insert(k.clone(), merged(v));
                }
            }
            Yaml::Hash(out)
        }
        Yaml::Array(a) => Yaml::Array(a.iter().map(merged).collect()),
        other => other.clone(),
    }
}

fn scalar(y: &Yaml) -> String {
    match y {
        Yaml::String(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        Yaml::Real(r) => r.clone(),
        other => panic!("compose.yaml: expected a scalar, found {other:?}"),
    }
}

fn strings(y: &Yaml) -> Vec<String> {
    y.as_vec()
        .unwrap_or_else(|| panic!("compose.yaml: expected a list (exec form), found {y:?}"))
        .iter()
        .map(scalar)
        .collect()
}

fn load_compose() -> BTreeMap<String, Service> {
    let text = std::fs::read_to_string(workspace().join("compose.yaml")).unwrap();
    let doc = merged(&YamlLoader::load_from_str(&text).unwrap()[0]);
    let mut services = BTreeMap::new();
    for (name, s) in doc["services"].as_hash().expect("services") {
        let mut svc = Service {
            image: scalar(&s["image"]),
            ..Service::default()
        };
        if !s["entrypoint"].is_badvalue() {
            svc.entrypoint = Some(strings(&s["entrypoint"]));
        }
        if !s["command"].is_badvalue() {
            svc.command = Some(strings(&s["command"]));
        }
        if let Some(env) = s["environment"].as_hash() {
            svc.environment = env.iter().map(|(k, v)| (scalar(k), scalar(v))).collect();
        }
        if let Some(vols) = s["volumes"].as_vec() {
            for v in vols {
                let v = scalar(v);
                let mut parts = v.split(':');
                let (host, container) = (parts.next().unwrap(), parts.next().unwrap());
                svc.volumes.push((host.to_owned(), container.to_owned()));
            }
        }
        if let Some(deps) = s["depends_on"].as_hash() {
            for (dep, how) in deps {
                svc.depends_on
                    .push((scalar(dep), scalar(&how["condition"])));
            }
        }
        if let Some(ports) = s["ports"].as_vec() {
            svc.ports = ports.iter().map(scalar).collect();
        }
        if !s["network_mode"].is_badvalue() {
            svc.network_mode = Some(scalar(&s["network_mode"]));
        }
        services.insert(scalar(name), svc);
    }
    services
}

/// What tierdeck's images start with, read off the Dockerfile (one `ENTRYPOINT`, one `CMD`,
/// the `ENV` lines).
struct Image {
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    env: Vec<(String, String)>,
}

fn load_dockerfile() -> Image {
    let text = std::fs::read_to_string(workspace().join("Dockerfile")).unwrap();
    let logical = text.replace("\\\n", " ");
    let mut image = Image {
        entrypoint: Vec::new(),
        cmd: Vec::new(),
        env: Vec::new(),
    };
    for line in logical.lines() {
        if let Some(rest) = line.strip_prefix("ENTRYPOINT ") {
            assert!(image.entrypoint.is_empty(), "one ENTRYPOINT");
            image.entrypoint = serde_json::from_str(rest).unwrap();
        } else if let Some(rest) = line.strip_prefix("CMD ") {
            assert!(image.cmd.is_empty(), "one CMD");
            image.cmd = serde_json::from_str(rest).unwrap();
        } else if let Some(rest) = line.strip_prefix("ENV ") {
            for pair in rest.split_whitespace() {
                let (k, v) = pair.split_once('=').expect("ENV KEY=VALUE");
                image.env.push((k.to_owned(), v.to_owned()));
            }
        }
    }
    assert!(!image.entrypoint.is_empty() && !image.cmd.is_empty());
    image
}

/// Replaces each `from` in `s` with its `to`, in one pass, where `from` stands as a whole word
/// (so `/compose` maps in `/compose/data` but not in `/etc/prometheus/compose.yml`).
fn map(s: &str, pairs: &[(String, String)]) -> String {
    let word = |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '-');
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    'scan: while i < s.len() {
        let before_ok = s[..i].chars().next_back().is_none_or(|c| !word(c));
        if before_ok {
            // Longest first.
            let mut candidates: Vec<&(String, String)> = pairs
                .iter()
                .filter(|(from, _)| s[i..].starts_with(from.as_str()))
                .collect();
            candidates.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
            for (from, to) in candidates {
                let end = i + from.len();
                if s[end..].chars().next().is_none_or(|c| !word(c)) {
                    out.push_str(to);
                    i = end;
                    continue 'scan;
                }
            }
        }
        let c = s[i..].chars().next().unwrap();
        out.push(c);
        i += c.len_utf8();
    }
    out
}

#[test]
fn map_replaces_whole_words_only() {
    let pairs = [
        ("/compose".to_owned(), "/tmp/x".to_owned()),
        ("moto:5000".to_owned(), "127.0.0.1:40000".to_owned()),
    ];
    assert_eq!(map("/compose/data", &pairs), "/tmp/x/data");
    assert_eq!(
        map("/etc/prometheus/compose.yml", &pairs),
        "/etc/prometheus/compose.yml"
    );
    assert_eq!(map("http://moto:5000", &pairs), "http://127.0.0.1:40000");
    assert_eq!(map("moto:50001", &pairs), "moto:50001");
    assert_eq!(map("rm -rf /compose && ls", &pairs), "rm -rf /tmp/x && ls");
}

/// A service's container port: what its stand-in listens on inside "its container".
fn container_port(name: &str, svc: &Service, image: &Image) -> Option<u16> {
    let port_of = |addr: &str| addr.rsplit(':').next().and_then(|p| p.parse().ok());
    if let Some((_, p)) = svc.environment.iter().find(|(k, _)| k == "MOTO_PORT") {
        return p.parse().ok();
    }
    if let Some(arg) = svc
        .command
        .iter()
        .flatten()
        .find_map(|a| a.strip_prefix("--web.listen-address="))
    {
        return port_of(arg);
    }
    if svc.image.starts_with("prom/node-exporter:") {
        return Some(9100);
    }
    if name == "tierdeck" {
        let listen = image
            .env
            .iter()
            .find(|(k, _)| k == "TIERDECK_SERVER__LISTEN")?;
        return port_of(&listen.1);
    }
    None
}

fn log(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
}

#[tokio::test]
async fn compose_yaml_runs_here_without_docker() {
    let services = load_compose();
    let image = load_dockerfile();
    let tmp = tempfile::tempdir().unwrap();
    let compose_dir = tmp.path().join("compose");
    let logs = tmp.path().join("logs");
    let bin = tmp.path().join("bin");
    let files = tmp.path().join("files");
    let workdir = tmp.path().join("workdir");
    for d in [&compose_dir, &logs, &bin, &files, &workdir] {
        std::fs::create_dir_all(d).unwrap();
    }
    // The images' programs.
    std::os::unix::fs::symlink(binary(), bin.join("tierdeck")).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_demo-traffic"), bin.join("demo-traffic"))
        .unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_demo-team"), bin.join("demo-team")).unwrap();

    // The emulator's image is the version scripts/setup installs.
    let setup = std::fs::read_to_string(workspace().join("scripts/setup")).unwrap();
    let moto_version = setup
        .lines()
        .find_map(|l| l.strip_prefix("moto_version="))
        .map(str::trim)
        .expect("scripts/setup pins moto[server] (`moto_version=`)");
    assert_eq!(
        services["moto"].image,
        format!("motoserver/moto:{moto_version}")
    );
    let moto = Moto::start().await;
    let moto_port: u16 = moto.url.rsplit(':').next().unwrap().parse().unwrap();

    // Every service reachable by name gets a loopback port (moto's is the stand-in's).
    let mut local_port = BTreeMap::new();
    let mut global: Vec<(String, String)> = Vec::new();
    for (name, svc) in &services {
        let Some(port) = container_port(name, svc, &image) else {
            continue;
        };
        let here = if name == "moto" {
            moto_port
        } else {
            free_port().unwrap()
        };
        local_port.insert(name.clone(), (port, here));
        global.push((format!("{name}:{port}"), format!("127.0.0.1:{here}")));
        for published in &svc.ports {
            let (host, container) = published.rsplit_once(':').unwrap();
            assert_eq!(container, port.to_string(), "{name}'s published port");
            global.push((host.to_owned(), format!("127.0.0.1:{here}")));
        }
    }

    // Order by depends_on; a dependency waited on to complete must be a one-shot service.
    let mut order: Vec<&str> = Vec::new();
    while order.len() < services.len() {
        let next = services
            .iter()
            .find(|(name, svc)| {
                !order.contains(&name.as_str())
                    && svc
                        .depends_on
                        .iter()
                        .all(|(d, _)| order.contains(&d.as_str()))
            })
            .map(|(name, _)| name.as_str())
            .expect("compose.yaml's depends_on has no cycle and names services");
        order.push(next);
    }
    for svc in services.values() {
        for (dep, condition) in &svc.depends_on {
            let one_shot = services[dep].ports.is_empty();
            assert_eq!(
                condition == "service_completed_successfully",
                one_shot,
                "{dep}: only one-shot services (no ports) are waited on to complete"
            );
            if condition == "service_healthy" {
                assert!(!services[dep].ports.is_empty(), "{dep} has a healthcheck");
            }
        }
    }

    let mut running: Vec<Child> = Vec::new();
    for name in order {
        let svc = &services[name];
        // Container paths → folders here.
        let mut pairs = global.clone();
        if let Some(port) = local_port.get(name) {
            pairs.push((
                format!("0.0.0.0:{}", port.0),
                format!("127.0.0.1:{}", port.1),
            ));
        }
        if let Some(shared) = svc
            .network_mode
            .as_deref()
            .and_then(|m| m.strip_prefix("service:"))
        {
            let (port, here) = local_port[shared];
            pairs.push((format!("127.0.0.1:{port}"), format!("127.0.0.1:{here}")));
        }
        pairs.push(("/usr/local/bin".into(), bin.display().to_string()));
        pairs.push((
            "/usr/local/share/tierdeck/site".into(),
            site_root().display().to_string(),
        ));
        pairs.push(("/var/lib/tierdeck".into(), workdir.display().to_string()));
        for (host, container) in &svc.volumes {
            let here = if host == "./.compose" {
                compose_dir.clone()
            } else {
                let path = workspace().join(host.trim_start_matches("./"));
                assert!(path.exists(), "{name}: {host} is not in the checkout");
                if path.is_file() {
                    // A configuration file: its service addresses mapped too.
                    let copy = files.join(path.file_name().unwrap());
                    let text = std::fs::read_to_string(&path).unwrap();
                    std::fs::write(&copy, map(&text, &global)).unwrap();
                    copy
                } else {
                    path
                }
            };
            pairs.push((container.clone(), here.display().to_string()));
        }

        let ours = svc.image == "tierdeck:local" || svc.image == "tierdeck-demo:local";
        let (entrypoint, cmd) = if ours {
            (image.entrypoint.clone(), image.cmd.clone())
        } else if svc.image.starts_with("prom/prometheus:") {
            (vec!["prometheus".to_owned()], Vec::new())
        } else {
            // moto runs as the stand-in above; the node_exporter is not needed here.
            assert!(
                name == "moto" || svc.image.starts_with("prom/node-exporter:"),
                "{name}: no stand-in for {}",
                svc.image
            );
            continue;
        };
        let argv: Vec<String> = match (&svc.entrypoint, &svc.command) {
            (Some(e), c) => e.iter().chain(c.iter().flatten()).cloned().collect(),
            (None, Some(c)) => entrypoint.iter().chain(c).cloned().collect(),
            (None, None) => entrypoint.iter().chain(&cmd).cloned().collect(),
        };
        let argv: Vec<String> = argv.iter().map(|a| map(a, &pairs)).collect();
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        if ours {
            env.extend(image.env.iter().cloned());
        }
        env.extend(svc.environment.iter().cloned());
        let mut env: BTreeMap<String, String> =
            env.into_iter().map(|(k, v)| (k, map(&v, &pairs))).collect();
        env.insert("PATH".into(), format!("{}:/usr/bin:/bin", bin.display()));
        env.entry("HOME".into())
            .or_insert_with(|| workdir.display().to_string());

        let started = std::time::Instant::now();
        let log_file = std::fs::File::create(logs.join(format!("{name}.log"))).unwrap();
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .env_clear()
            .envs(&env)
            .current_dir(&workdir)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .kill_on_drop(true);
        if svc.ports.is_empty() {
            let status = command.status().await.unwrap();
            assert!(
                status.success(),
                "{name}: {argv:?} failed:\n{}",
                log(&logs, name)
            );
        } else {
            running.push(command.spawn().unwrap());
            let (_, here) = local_port[name];
            let ready = if name == "prometheus" {
                "/-/ready"
            } else {
                "/healthz"
            };
            let url = format!("http://127.0.0.1:{here}{ready}");
            while !reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "{name} did not answer {url}:\n{}",
                    log(&logs, name)
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        println!("{name}: {:.1} s", started.elapsed().as_secs_f64());
    }

    // The trial as its users meet it: every demo user signs in with the printed password.
    let (_, panel_port) = local_port["tierdeck"];
    let base = format!("http://127.0.0.1:{panel_port}");
    let users = services["users"].entrypoint.as_ref().unwrap();
    let password = &users[2];
    for name in ["admin", "minji", "sejin", "seung", "jeongho", "guest"] {
        let c = Client::new(&base);
        assert_eq!(
            c.login(name, password).await.status(),
            303,
            "{name} signs in"
        );
    }
    let seung = Client::new(&base);
    seung.login("seung", password).await;

    // The spec repository's history became changes, planned against the emulator's sandbox.
    let get = |path: &'static str| {
        let c = seung.clone();
        async move {
            let res = c.get(path).await;
            assert_eq!(res.status(), 200, "GET {path}");
            res.json::<Value>().await.unwrap()
        }
    };
    wait_for("the watcher's first changes", 30, || async {
        let v = get("/api/v1/changes").await;
        (v.as_array().map_or(0, Vec::len) >= 2).then_some(())
    })
    .await;
    let prod = get("/api/v1/environments/prod").await;
    assert_eq!(
        prod["spec"]["autoscaling_groups"][1]["name"], "petclinic-prod-was",
        "{prod:#}"
    );
    // The team applied both environments once, as the demo's people.
    for env in ["prod", "staging"] {
        let e = get(if env == "prod" {
            "/api/v1/environments/prod"
        } else {
            "/api/v1/environments/staging"
        })
        .await;
        assert!(e["last_applied_commit"].is_string(), "{env}: {e:#}");
    }
    let applied = get("/api/v1/audit?action=change.applied").await;
    assert_eq!(
        applied["events"].as_array().map(Vec::len),
        Some(2),
        "{applied:#}"
    );
    // The example prices price every group and database.
    let cost = get("/api/v1/environments/prod/cost").await;
    assert_eq!(cost["cost"]["unpriced"], serde_json::json!([]), "{cost:#}");
    assert!(
        cost["cost"]["monthly"]["expected"].as_f64().unwrap_or(0.0) > 0.0,
        "{cost:#}"
    );

    // Prometheus holds 30 days of traffic with the incident: the SLO page has its budget.
    let slo = get("/api/v1/environments/prod/slo").await;
    assert_eq!(slo["error"], Value::Null, "{slo:#}");
    let availability = slo["slos"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "availability"))
        .unwrap_or_else(|| panic!("{slo:#}"));
    let left = availability["budget"]["remaining_percent"]
        .as_f64()
        .unwrap_or_else(|| panic!("{slo:#}"));
    assert!((40.0..50.0).contains(&left), "{left} % left: {slo:#}");

    // A push from the working copy calls the webhook through the repository's hook.
    let work = compose_dir.join("specs-work");
    let file = work.join("environments/prod/autoscaling.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace(
            "timezone: Asia/Seoul, min: 5, max: 7 }",
            "timezone: Asia/Seoul, min: 5, max: 8 }",
        ),
    )
    .unwrap();
    let git = |args: &[&str]| git_as(&work, SEUNG, args);
    git(&[
        "-c",
        "commit.gpgsign=false",
        "commit",
        "-qam",
        "Let the was evening peak reach 8",
    ]);
    git(&["push", "-q", "origin", "main"]);
    let head = git(&["rev-parse", "HEAD"]).trim().to_owned();
    // The panel polls every 30 s; the hook brings it at once.
    wait_for("the pushed change through the webhook", 10, || async {
        let v = get("/api/v1/changes").await;
        v.as_array()
            .is_some_and(|c| c.iter().any(|c| c["commit"]["sha"] == head.as_str()))
            .then_some(())
    })
    .await;
    drop(running);
}
