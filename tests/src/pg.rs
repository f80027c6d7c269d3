//! PostgreSQL for the tests: one server per test process, started on first use on a free
//! loopback port (Debian's binaries, `initdb` into a temporary folder, run as the `postgres`
//! user when the tests run as root, as PostgreSQL refuses root), and one database per panel.
//! The server stops and its folder goes when the test process ends: a shell that started it
//! waits on a pipe from this process and stops it when the pipe closes.
//!
//! `TIERDECK_TEST_BACKEND=postgres` runs the panels of every test on it; `sqlite` (the default)
//! on a SQLite file in each panel's folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// Whether the panels of this test run use PostgreSQL.
pub fn in_use() -> bool {
    match std::env::var("TIERDECK_TEST_BACKEND").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("TIERDECK_TEST_BACKEND must be sqlite or postgres, not {other}"),
    }
}

/// The running server.
pub struct Server {
    pub port: u16,
    bin: PathBuf,
    /// The shell that started the server, with its standard input held open until the test
    /// process ends: its closing stops the server.
    _watchdog: Mutex<std::process::Child>,
}

const WATCHDOG: &str = r#"
set -eu
data=$1; sock=$2; port=$3; bin=$4
run=""
if [ "$(id -u)" = 0 ]; then
    chown postgres:postgres "$data" "$sock"
    run="runuser -u postgres --"
fi
$run "$bin/initdb" -D "$data" -A trust -U postgres --no-sync >/dev/null
$run "$bin/pg_ctl" -D "$data" -l "$data/log" -w -t 60 -o "-p $port -k $sock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=500" start >/dev/null
echo ready
cat >/dev/null || true
$run "$bin/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
rm -rf "$data" "$sock"
"#;

/// The newest of Debian's PostgreSQL versions installed.
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (/usr/lib/postgresql): run scripts/setup --test")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().expect("no PostgreSQL server binaries").1
}

/// The test process's server, started on first use.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let bin = bin_dir();
        let data = tempfile::Builder::new()
            .prefix("tierdeck-pg-")
            .tempdir()
            .expect("a folder for PostgreSQL")
            .keep();
        let sock = tempfile::Builder::new()
            .prefix("tierdeck-pgsock-")
            .tempdir()
            .expect("a folder for PostgreSQL's socket")
            .keep();
        let port = crate::free_port().expect("a free port");
        let mut child = Command::new("sh")
            .args(["-c", WATCHDOG, "pg-watchdog"])
            .arg(&data)
            .arg(&sock)
            .arg(port.to_string())
            .arg(&bin)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting PostgreSQL");
        let mut out = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let started = Instant::now();
        use std::io::Read as _;
        let mut byte = [0u8; 1];
        while !line.ends_with('\n') {
            match out.read(&mut byte) {
                Ok(1) => line.push(byte[0] as char),
                _ => {
                    let log = std::fs::read_to_string(data.join("log")).unwrap_or_default();
                    panic!("PostgreSQL did not start: {log}");
                }
            }
        }
        assert_eq!(line.trim(), "ready", "PostgreSQL's start-up said {line}");
        eprintln!(
            "PostgreSQL on 127.0.0.1:{port} started in {} ms",
            started.elapsed().as_millis()
        );
        Server {
            port,
            bin,
            _watchdog: Mutex::new(child),
        }
    })
}

impl Server {
    /// Runs `sql` as the superuser on database `db`; panics with the server's answer unless it
    /// succeeds.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-d")
            .arg(db)
            .arg("-c")
            .arg(sql)
            .stdin(Stdio::null())
            .output()
            .expect("running psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A new empty database; its URL.
    pub fn new_database(&self, name: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
        self.url(name)
    }

    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

/// The database of the panel whose folder is `dir` (made on first use): named after the
/// folder, so a restart or a command run there finds the same one.
pub fn database_for(dir: &Path) -> String {
    static MADE: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let name: String = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let name = format!("panel{name}");
    let server = server();
    let mut made = MADE.lock().unwrap();
    if !made.contains(&name) {
        server.new_database(&name);
        made.push(name.clone());
    }
    server.url(&name)
}
