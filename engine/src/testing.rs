//! The engine's own test bench: an engine over a fresh SQLite file, a spec repository made with
//! git in a temporary folder, the in-memory AWS, a Prometheus that answers what a test says and
//! a clock a test moves; jobs are run by a test's worker ([`TestEngine::drain`]). What the
//! engine's workflow tests (apply, settle, revert, watch) are built on.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use domain::change::ChangeId;
use futures::future::BoxFuture;

use crate::aws::clients::AwsClients;
use crate::aws::memory::MemoryAws;
use crate::clock::{Clock, ManualClock};
use crate::jobs::worker::Worker;
use crate::prometheus::{Points, PromApi, PromError};
use crate::repo::git::Remote;
use crate::repo::RepoSettings;
use crate::service::repo_sync::{SyncOutcome, Watcher};
use crate::settings::{ApplySettings, CostSettings, EngineSettings};
use crate::store::Store;
use crate::{Engine, RequestMeta};

/// A Prometheus whose every instant query answers `ratio` (an error ratio, and a request rate
/// where a total is asked): a healthy service at 0, a burning one at 0.5.
#[derive(Debug, Default)]
pub struct FakeProm {
    ratio: Mutex<f64>,
}

impl FakeProm {
    pub fn answer(&self, ratio: f64) {
        *self.ratio.lock().unwrap() = ratio;
    }
}

impl PromApi for FakeProm {
    fn value<'a>(
        &'a self,
        query: &'a str,
        _at: Option<i64>,
    ) -> BoxFuture<'a, Result<Option<f64>, PromError>> {
        let ratio = *self.ratio.lock().unwrap();
        // A total (requests per second) is a rate, never an error ratio.
        let total = !query.contains('/');
        Box::pin(async move { Ok(Some(if total { 100.0 } else { ratio })) })
    }

    fn range<'a>(
        &'a self,
        _query: &'a str,
        _start: i64,
        _end: i64,
        _step: i64,
    ) -> BoxFuture<'a, Result<Points, PromError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// One environment, `shop`, whose rules let it apply itself with nothing to wait for, and
/// revert itself when the watch after an apply sees a page alert.
pub const SHOP: &[(&str, &str)] = &[
    (
        "environments/shop/environment.yaml",
        "environment:
  name: shop
  region: ap-northeast-2
  approvals:
    required: 0
    allow_self_approval: true
  auto_apply: false
  watch:
    minutes: 10
    auto_revert: true
  guardrails:
    min_instances: 1
    max_instances: 8
    require_multi_az: false
",
    ),
    (
        "environments/shop/autoscaling.yaml",
        "autoscaling_groups:
  - name: shop-web
    tier: web
    min: 2
    max: 4
    desired: 2
    cpu_scaling:
      scale_out_above: 50
      scale_in_below: 30
    schedule:
      - { name: web-night, cron: \"0 0 * * *\", timezone: Asia/Seoul, min: 2, max: 4, desired: 2 }
",
    ),
    (
        "environments/shop/database.yaml",
        "databases:
  - identifier: shop-db
    instance_class: db.t3.small
    multi_az: false
    allocated_storage_gb: 20
    backup_retention_days: 7
    deletion_protection: true
",
    ),
    (
        "environments/shop/security.yaml",
        "security_groups:
  - name: shop-alb-sg
    edge: true
    ingress:
      - { protocol: tcp, port: 443, cidr: 0.0.0.0/0, description: HTTPS }
  - name: shop-web-sg
    ingress:
      - { protocol: tcp, port: 80, from_group: shop-alb-sg, description: from the ALB }
",
    ),
    (
        "environments/shop/slo.yaml",
        "slos:
  - name: availability
    objective: 99.9
    window_days: 30
    errors: 'sum(rate(http_requests_total{code=~\"5..\"}[{{window}}]))'
    total: 'sum(rate(http_requests_total[{{window}}]))'
",
    ),
];

/// An engine on a fresh database, a spec repository and the in-memory AWS.
pub struct TestEngine {
    pub engine: Engine,
    pub aws: Arc<MemoryAws>,
    pub prom: Arc<FakeProm>,
    pub clock: Arc<ManualClock>,
    pub watcher: Arc<Watcher>,
    repo: git2::Repository,
    _dir: tempfile::TempDir,
}

impl TestEngine {
    /// `files` committed to a new repository's `main`; AWS runs what their specs name (see
    /// [`MemoryAws::running`]), with nothing of what tierdeck manages set yet.
    pub async fn new(files: &[(&str, &str)]) -> TestEngine {
        Self::with_settings(files, |_| {}).await
    }

    /// [`TestEngine::new`] with settings changed by `tune`.
    pub async fn with_settings(
        files: &[(&str, &str)],
        tune: impl FnOnce(&mut EngineSettings),
    ) -> TestEngine {
        let dir = tempfile::tempdir().unwrap();
        let specs = dir.path().join("specs");
        let repo = git2::Repository::init(&specs).unwrap();
        let store = Store::open(&dir.path().join("tierdeck.db")).await.unwrap();
        store.migrate().await.unwrap();
        let mut settings = EngineSettings {
            repo: Some(RepoSettings {
                remote: Remote {
                    url: specs.display().to_string(),
                    branch: "main".into(),
                    token: None,
                    ssh_key: None,
                },
                mirror_dir: dir.path().join("mirror.git"),
                poll_interval: Duration::from_secs(3600),
                fetch_timeout: Duration::from_secs(30),
            }),
            // No network: no prices but the file's (none).
            cost: CostSettings {
                price_list: false,
                price_list_off: "tests price nothing".into(),
                ..CostSettings::default()
            },
            apply: ApplySettings {
                settle_poll_max: Duration::from_millis(100),
                ..ApplySettings::default()
            },
            prometheus: None,
            ..EngineSettings::default()
        };
        settings.policy.min_approvals = 0;
        tune(&mut settings);
        for (path, text) in files {
            write(&specs, path, text);
        }
        TestEngine::commit_in(&repo, "The shop as it is");
        let spec = crate::specs::read_tree(&specs)
            .0
            .into_iter()
            .find_map(|env| {
                domain::spec::folder::load_folder(&env.name, &env.files, Vec::new()).ok()
            });
        let aws = Arc::new(match &spec {
            Some(s) => MemoryAws::running(s),
            None => MemoryAws::default(),
        });
        let prom = Arc::new(FakeProm::default());
        let clock = Arc::new(ManualClock::at(Utc::now()));
        let engine = Engine::with_parts(
            store,
            settings.clone(),
            AwsClients::memory(aws.clone()),
            Some(prom.clone() as Arc<dyn PromApi>),
            clock.clone() as Arc<dyn Clock>,
        );
        let watcher = Watcher::new(engine.clone(), settings.repo.clone().unwrap());
        TestEngine {
            engine,
            aws,
            prom,
            clock,
            watcher,
            repo,
            _dir: dir,
        }
    }

    fn commit_in(repo: &git2::Repository, message: &str) -> git2::Oid {
        let mut index = repo.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let who = git2::Signature::now("Sejin", "sejin@example.com").unwrap();
        let parent = repo
            .head()
            .ok()
            .and_then(|h| h.target())
            .and_then(|id| repo.find_commit(id).ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        let oid = repo
            .commit(Some("HEAD"), &who, &who, message, &tree, &parents)
            .unwrap();
        // The branch the panel tracks.
        let commit = repo.find_commit(oid).unwrap();
        repo.branch("main", &commit, true).unwrap();
        oid
    }

    /// Replaces `from` with `to` in `path` and commits; returns the commit's id.
    pub fn edit(&self, path: &str, from: &str, to: &str, message: &str) -> String {
        let root = self.repo.workdir().unwrap().to_path_buf();
        let text = std::fs::read_to_string(root.join(path)).unwrap();
        assert!(text.contains(from), "{path} has no `{from}`");
        write(&root, path, &text.replace(from, to));
        Self::commit_in(&self.repo, message).to_string()
    }

    /// Fetches the repository and records what changed.
    pub async fn sync(&self) -> SyncOutcome {
        self.watcher.sync(&RequestMeta::default()).await.unwrap()
    }

    /// Runs every job due now, until none is.
    pub async fn drain(&self) -> usize {
        Worker::new(self.engine.clone()).drain().await
    }

    /// Moves the clock on.
    pub fn advance(&self, by: chrono::Duration) {
        self.clock.advance(by);
    }

    /// The change of `env` recorded for commit `sha`.
    pub async fn change_for(&self, env: &str, sha: &str) -> ChangeId {
        let mut conn = self.engine.store.pool().acquire().await.unwrap();
        let (id,): (i64,) =
            sqlx::query_as("SELECT id FROM changes WHERE environment = $1 AND commit_sha = $2")
                .bind(env)
                .bind(sha)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        ChangeId(id)
    }

    pub async fn change(&self, id: ChangeId) -> crate::store::changes::Change {
        self.engine.specs().change(id).await.unwrap()
    }

    /// Jobs of `id` as `(kind, state)`.
    pub async fn jobs_of(&self, id: ChangeId) -> Vec<(String, String)> {
        let mut conn = self.engine.store.pool().acquire().await.unwrap();
        crate::store::jobs::of_change(&mut conn, id.0)
            .await
            .unwrap()
            .into_iter()
            .map(|j| (j.kind, j.state))
            .collect()
    }

    /// The audit actions recorded so far, oldest first.
    pub async fn audit_actions(&self) -> Vec<String> {
        let mut conn = self.engine.store.pool().acquire().await.unwrap();
        sqlx::query_scalar("SELECT action FROM audit_events ORDER BY seq")
            .fetch_all(&mut *conn)
            .await
            .unwrap()
    }
}

fn write(root: &Path, path: &str, text: &str) {
    let file: PathBuf = root.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, text).unwrap();
}
