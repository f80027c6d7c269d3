//! The local mirror of the spec repository, with git2. Everything here blocks: callers run it
//! on the blocking pool. Work per fetch follows the new commits, never the whole history:
//! environments are compared by their folder's tree id.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use domain::change::{CommitInfo, FileDiff, FileStatus};
use domain::spec::folder::{read_folder, FolderEntry};
use domain::spec::{SourceFile, SpecError};
use git2::{Cred, FetchOptions, Oid, RemoteCallbacks, Repository, Tree};

/// Diffs longer than this are cut (the rest stays in git).
const MAX_DIFF_BYTES: usize = 64 * 1024;

/// How to reach the remote.
#[derive(Clone)]
pub struct Remote {
    /// A local path, `file://`, `https://` or `ssh://` URL (or `user@host:path`).
    pub url: String,
    pub branch: String,
    /// For https: sent as the password, with the URL's user name or `x-access-token`.
    pub token: Option<String>,
    /// For ssh: a private key file.
    pub ssh_key: Option<PathBuf>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("url", &domain::redact::url(&self.url))
            .field("branch", &self.branch)
            .field("token", &self.token.as_ref().map(|_| "****"))
            .field("ssh_key", &self.ssh_key)
            .finish()
    }
}

/// Held by a fetch: one at a time in a process.
static FETCHING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A fetch that failed on a ref another process holds locked, or for good.
enum FetchError {
    Locked(git2::Error),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for FetchError {
    fn from(e: anyhow::Error) -> Self {
        FetchError::Other(e)
    }
}

pub struct Mirror {
    repo: Repository,
    remote: Remote,
}

impl Mirror {
    /// Opens the bare mirror in `dir`, creating it on first use.
    pub fn open(dir: &Path, remote: Remote) -> anyhow::Result<Mirror> {
        // Many readers may find it missing at once (a replica's first requests): one creates
        // it, the others open what it made.
        static CREATING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let repo = match Repository::open_bare(dir) {
            Ok(r) => r,
            Err(_) => {
                let _one = CREATING.lock().unwrap_or_else(|p| p.into_inner());
                match Repository::open_bare(dir) {
                    Ok(r) => r,
                    Err(_) => {
                        std::fs::create_dir_all(dir)
                            .with_context(|| format!("creating {}", dir.display()))?;
                        Repository::init_bare(dir).with_context(|| {
                            format!("creating a git mirror in {}", dir.display())
                        })?
                    }
                }
            }
        };
        Ok(Mirror { repo, remote })
    }

    /// [`Mirror::open`], fetched first when it lacks one of `commits`: on a replica that does
    /// not lead, the mirror is fetched only when a change recorded by the leader names a commit
    /// it has not seen. A commit the remote no longer has stays missing (the read then fails
    /// naming it, as before).
    pub fn open_having(
        dir: &Path,
        remote: Remote,
        commits: &[Oid],
        timeout: std::time::Duration,
    ) -> anyhow::Result<Mirror> {
        let m = Mirror::open(dir, remote)?;
        if commits.iter().all(|c| m.has_commit(*c)) {
            return Ok(m);
        }
        let _one = FETCHING.lock().unwrap_or_else(|p| p.into_inner());
        // Another reader may have fetched them while this one waited.
        if !commits.iter().all(|c| m.has_commit(*c)) {
            m.fetch_alone(std::time::Instant::now() + timeout)?;
        }
        Ok(m)
    }

    /// A spec repository's own clone at `path` (or a folder inside it), for reading its
    /// history offline (`tierdeck cost --against REV`); it is never fetched.
    pub fn local(path: &Path) -> anyhow::Result<Mirror> {
        let repo = Repository::discover(path)
            .with_context(|| format!("{} is not inside a git repository", path.display()))?;
        Ok(Mirror {
            repo,
            remote: Remote {
                url: path.display().to_string(),
                branch: String::new(),
                token: None,
                ssh_key: None,
            },
        })
    }

    /// The commit a revision (`main`, `HEAD~1`, a SHA) names.
    pub fn resolve(&self, rev: &str) -> anyhow::Result<Oid> {
        let object = self
            .repo
            .revparse_single(rev)
            .with_context(|| format!("`{rev}` names no commit"))?;
        Ok(object
            .peel_to_commit()
            .with_context(|| format!("`{rev}` names no commit"))?
            .id())
    }

    fn tracking_ref(&self) -> String {
        format!("refs/remotes/origin/{}", self.remote.branch)
    }

    /// Fetches the tracked branch (force-pushes included) and returns its head. A transfer
    /// still running at `deadline` is cancelled (a remote that sends nothing at all is bounded
    /// by the watcher, which stops waiting). One fetch at a time per process (the watcher's
    /// and a reader's [`Mirror::open_having`] would otherwise race for git's ref locks); a
    /// ref locked by another process (replicas sharing a folder) is tried again until
    /// `deadline`.
    pub fn fetch(&self, deadline: std::time::Instant) -> anyhow::Result<Oid> {
        let _one = FETCHING.lock().unwrap_or_else(|p| p.into_inner());
        self.fetch_alone(deadline)
    }

    /// [`Mirror::fetch`] for a caller that holds [`FETCHING`].
    fn fetch_alone(&self, deadline: std::time::Instant) -> anyhow::Result<Oid> {
        loop {
            match self.fetch_once(deadline) {
                Err(FetchError::Locked(_)) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(FetchError::Locked(e)) => {
                    return Err(anyhow!(
                        "{}",
                        domain::redact::in_text(e.message(), &self.remote.url)
                    ))
                }
                Err(FetchError::Other(e)) => return Err(e),
                Ok(head) => return Ok(head),
            }
        }
    }

    fn fetch_once(&self, deadline: std::time::Instant) -> Result<Oid, FetchError> {
        let mut callbacks = RemoteCallbacks::new();
        callbacks.transfer_progress(move |_| std::time::Instant::now() < deadline);
        callbacks.sideband_progress(move |_| std::time::Instant::now() < deadline);
        let token = self.remote.token.clone();
        let key = self.remote.ssh_key.clone();
        let mut attempts = 0;
        callbacks.credentials(move |_url, username, allowed| {
            attempts += 1;
            if attempts > 3 {
                return Err(git2::Error::from_str("the remote refused the credentials"));
            }
            if allowed.contains(git2::CredentialType::SSH_KEY) {
                if let Some(k) = &key {
                    return Cred::ssh_key(username.unwrap_or("git"), None, k, None);
                }
            }
            if allowed.contains(git2::CredentialType::USER_PASS_PLAINTEXT) {
                if let Some(t) = &token {
                    return Cred::userpass_plaintext(username.unwrap_or("x-access-token"), t);
                }
            }
            Err(git2::Error::from_str("the remote asks for credentials; set repo.token (https) or repo.ssh_key_path (ssh)"))
        });
        let mut options = FetchOptions::new();
        options.remote_callbacks(callbacks);
        let refspec = format!("+refs/heads/{}:{}", self.remote.branch, self.tracking_ref());
        let mut remote = self
            .repo
            .remote_anonymous(&self.remote.url)
            .context("setting up the remote")?;
        remote
            .fetch(&[refspec.as_str()], Some(&mut options), None)
            .map_err(|e| match e.code() {
                git2::ErrorCode::Locked => FetchError::Locked(e),
                _ => FetchError::Other(anyhow!(
                    "{}",
                    domain::redact::in_text(e.message(), &self.remote.url)
                )),
            })?;
        let reference = self
            .repo
            .find_reference(&self.tracking_ref())
            .map_err(|_| anyhow!("the remote has no branch `{}`", self.remote.branch))?;
        Ok(reference.target().ok_or_else(|| {
            anyhow!(
                "the branch `{}` is not a plain reference",
                self.remote.branch
            )
        })?)
    }

    /// Whether `ancestor` is `descendant` or reachable from it.
    pub fn is_ancestor(&self, ancestor: Oid, descendant: Oid) -> bool {
        ancestor == descendant
            || self
                .repo
                .graph_descendant_of(descendant, ancestor)
                .unwrap_or(false)
    }

    pub fn has_commit(&self, oid: Oid) -> bool {
        self.repo.find_commit(oid).is_ok()
    }

    /// Commits reachable from `new` and not from `old`, newest first, at most `limit`.
    pub fn new_commits(
        &self,
        old: Option<Oid>,
        new: Oid,
        limit: usize,
    ) -> anyhow::Result<Vec<Oid>> {
        let mut walk = self.repo.revwalk()?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME)?;
        walk.push(new)?;
        if let Some(old) = old.filter(|o| self.has_commit(*o)) {
            walk.hide(old)?;
        }
        let mut out = Vec::new();
        for oid in walk.take(limit) {
            out.push(oid?);
        }
        Ok(out)
    }

    pub fn commit_info(&self, oid: Oid) -> anyhow::Result<CommitInfo> {
        let c = self.repo.find_commit(oid)?;
        let author = c.author();
        let t = chrono::DateTime::from_timestamp(c.time().seconds(), 0).unwrap_or_default();
        Ok(CommitInfo {
            sha: oid.to_string(),
            author: domain::change::Person {
                name: String::from_utf8_lossy(author.name_bytes()).into_owned(),
                email: String::from_utf8_lossy(author.email_bytes()).to_lowercase(),
            },
            committed_at: t,
            message: String::from_utf8_lossy(c.message_bytes()).into_owned(),
        })
    }

    /// The author and the committer of a commit (e-mails in lower case).
    pub fn commit_people(&self, oid: Oid) -> anyhow::Result<[domain::change::Person; 2]> {
        let c = self.repo.find_commit(oid)?;
        let person = |s: git2::Signature<'_>| domain::change::Person {
            name: String::from_utf8_lossy(s.name_bytes()).into_owned(),
            email: String::from_utf8_lossy(s.email_bytes())
                .trim()
                .to_lowercase(),
        };
        Ok([person(c.author()), person(c.committer())])
    }

    fn tree(&self, commit: Oid) -> anyhow::Result<Tree<'_>> {
        Ok(self.repo.find_commit(commit)?.tree()?)
    }

    /// The tree id of `environments/<env>` at `commit` (`None`: no such folder).
    pub fn env_tree(&self, commit: Oid, env: &str) -> anyhow::Result<Option<Oid>> {
        let tree = self.tree(commit)?;
        Ok(tree
            .get_path(Path::new("environments").join(env).as_path())
            .ok()
            .filter(|e| e.kind() == Some(git2::ObjectType::Tree))
            .map(|e| e.id()))
    }

    /// The first parent's tree id of the same folder (`None` for a root commit or no folder).
    pub fn parent_env_tree(&self, commit: Oid, env: &str) -> anyhow::Result<Option<Oid>> {
        let c = self.repo.find_commit(commit)?;
        match c.parent_ids().next() {
            Some(p) => self.env_tree(p, env),
            None => Ok(None),
        }
    }

    /// Environment folder names at `commit`.
    pub fn environments(&self, commit: Oid) -> anyhow::Result<Vec<String>> {
        let tree = self.tree(commit)?;
        let Ok(entry) = tree.get_path(Path::new("environments")) else {
            return Ok(Vec::new());
        };
        let Ok(sub) = self.repo.find_tree(entry.id()) else {
            return Ok(Vec::new());
        };
        Ok(sub
            .iter()
            .filter(|e| e.kind() == Some(git2::ObjectType::Tree))
            .filter_map(|e| e.name().ok().map(str::to_owned))
            .collect())
    }

    /// The `*.yaml` files of an environment at `commit`, and errors for files that are not text.
    pub fn env_files(
        &self,
        commit: Oid,
        env: &str,
    ) -> anyhow::Result<(Vec<SourceFile>, Vec<SpecError>)> {
        let Some(tree_id) = self.env_tree(commit, env)? else {
            return Ok((Vec::new(), Vec::new()));
        };
        let tree = self.repo.find_tree(tree_id)?;
        let odb = self.repo.odb()?;
        let mut entries = Vec::new();
        for entry in tree.iter() {
            let Ok(name) = entry.name() else { continue };
            let is_file = entry.kind() == Some(git2::ObjectType::Blob);
            // The size from the object's header: a hostile blob is never loaded.
            let size = if is_file {
                odb.read_header(entry.id())?.0
            } else {
                0
            };
            entries.push(FolderEntry {
                name: name.to_owned(),
                is_file,
                size,
            });
        }
        read_folder(env, entries, |e| {
            let id = tree
                .get_name(&e.name)
                .ok_or_else(|| anyhow!("{} left the tree while it was read", e.name))?
                .id();
            Ok(Ok(self.repo.find_blob(id)?.content().to_vec()))
        })
    }

    /// Per-file unified diffs of `environments/<env>/` from `base` (`None`: nothing) to `commit`.
    pub fn env_diff(
        &self,
        base: Option<Oid>,
        commit: Oid,
        env: &str,
    ) -> anyhow::Result<Vec<FileDiff>> {
        let new_tree = self.tree(commit)?;
        let old_tree = match base.filter(|b| self.has_commit(*b)) {
            Some(b) => Some(self.tree(b)?),
            None => None,
        };
        let mut opts = git2::DiffOptions::new();
        opts.pathspec(format!("environments/{env}/"))
            .context_lines(3);
        let diff =
            self.repo
                .diff_tree_to_tree(old_tree.as_ref(), Some(&new_tree), Some(&mut opts))?;
        let mut files = Vec::new();
        for (i, delta) in diff.deltas().enumerate() {
            let status = match delta.status() {
                git2::Delta::Added => FileStatus::Added,
                git2::Delta::Deleted => FileStatus::Deleted,
                _ => FileStatus::Modified,
            };
            let path = delta
                .new_file()
                .path()
                .or_else(|| delta.old_file().path())
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut text = String::new();
            let mut truncated = false;
            let (mut additions, mut deletions) = (0u32, 0u32);
            let binary = delta.new_file().is_binary() || delta.old_file().is_binary();
            if let Ok(Some(mut patch)) = git2::Patch::from_diff(&diff, i) {
                let (_, a, d) = patch.line_stats().unwrap_or((0, 0, 0));
                additions = a as u32;
                deletions = d as u32;
                patch.print(&mut |_delta, _hunk, line| {
                    let prefix = match line.origin() {
                        '+' | '-' | ' ' => Some(line.origin()),
                        _ => None,
                    };
                    let content = String::from_utf8_lossy(line.content());
                    if text.len() + content.len() + 1 > MAX_DIFF_BYTES {
                        truncated = true;
                        return true;
                    }
                    if let Some(p) = prefix {
                        text.push(p);
                    }
                    text.push_str(&content);
                    true
                })?;
            }
            files.push(FileDiff {
                path,
                status,
                additions,
                deletions,
                diff: text,
                truncated,
                binary,
            });
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(repo: &Repository, n: usize) -> Oid {
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let blob = repo.blob(format!("{n}\n").as_bytes()).unwrap();
        let mut tree = repo.treebuilder(None).unwrap();
        tree.insert("n", blob, 0o100644).unwrap();
        let tree = repo.find_tree(tree.write().unwrap()).unwrap();
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<_> = parent.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, &format!("{n}"), &tree, &parents)
            .unwrap()
    }

    #[test]
    fn fetches_at_once_from_many_threads_of_a_process_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let source = Repository::init(dir.path().join("source")).unwrap();
        let first = commit(&source, 0);
        let remote = Remote {
            url: dir.path().join("source").display().to_string(),
            branch: source.head().unwrap().shorthand().unwrap().to_owned(),
            token: None,
            ssh_key: None,
        };
        let mirror_dir = dir.path().join("mirror.git");
        Mirror::open(&mirror_dir, remote.clone()).unwrap();
        for round in 1..=5 {
            let head = commit(&source, round);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            std::thread::scope(|s| {
                let fetchers: Vec<_> = (0..6)
                    .map(|k| {
                        let (remote, mirror_dir) = (remote.clone(), mirror_dir.clone());
                        s.spawn(move || {
                            if k % 2 == 0 {
                                Mirror::open(&mirror_dir, remote)?.fetch(deadline)
                            } else {
                                Mirror::open_having(
                                    &mirror_dir,
                                    remote,
                                    &[head],
                                    std::time::Duration::from_secs(30),
                                )
                                .map(|_| head)
                            }
                        })
                    })
                    .collect();
                for f in fetchers {
                    assert_eq!(f.join().unwrap().unwrap(), head, "round {round}");
                }
            });
            let m = Mirror::open(&mirror_dir, remote.clone()).unwrap();
            assert!(m.has_commit(first) && m.has_commit(head));
        }
    }
}
