//! Reading the spec repository: the bare mirror (`git`), specs and commit headers by commit
//! (`read_cache`), the webhook's signature (`webhook`), and what a fetch means for each
//! environment ([`plan_work`]): a change to record, or a folder back to its applied state. The
//! watcher that fetches and records is `service::repo_sync`.

pub mod git;
pub(crate) mod read_cache;
pub mod webhook;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use domain::change::{CommitInfo, FileDiff, Person};
use domain::spec::folder::load_folder;
use domain::spec::{EnvironmentSpec, FieldEdit, SpecError};
use git2::Oid;

/// On first sight of a repository, how far back to look for the commit that last touched an
/// environment (older ones are named by the head commit), and for the authors of a change to an
/// environment never applied.
const FIRST_SIGHT_DEPTH: usize = 200;
/// Commits looked at in one fetch; a larger push is taken as a whole at its head.
pub(crate) const MAX_NEW_COMMITS: usize = 5_000;
#[derive(Debug, Clone)]
pub struct RepoSettings {
    pub remote: git::Remote,
    /// Where the bare mirror lives (in the data folder).
    pub mirror_dir: PathBuf,
    pub poll_interval: Duration,
    /// The longest a sync may take, the fetch and the reading of what it brought; and the
    /// longest a sync request waits.
    pub fetch_timeout: Duration,
}

pub(crate) struct Known {
    pub(crate) last_applied: Option<String>,
    pub(crate) has_changes: bool,
}

/// A change worked out from the mirror: which commit, against which applied commit, with its
/// files and authors. The watcher reads its spec (kept by commit) and has it judged before it is
/// recorded ([`Detected`]).
pub(crate) struct Found {
    pub(crate) env: String,
    pub(crate) commit: CommitInfo,
    pub(crate) base: Option<String>,
    pub(crate) files: Vec<FileDiff>,
    pub(crate) authors: Vec<Person>,
}

/// A change to record: what the mirror says ([`Found`]) and what its judgement says.
pub(crate) struct Detected {
    pub(crate) found: Found,
    pub(crate) edits: Vec<FieldEdit>,
    pub(crate) errors: Vec<SpecError>,
    /// Judged by the rules that hold for the change, not only its own.
    pub(crate) violations: Vec<domain::guardrails::Violation>,
    /// The rules the change edits.
    pub(crate) policy_edits: Vec<String>,
    /// Approvals the rules that judge it require (the cost policy's extra one included).
    pub(crate) approvals_required: u8,
    /// What it does to the monthly cost, when that was known in time.
    pub(crate) cost: Option<domain::cost::ChangeCostReport>,
    /// The paths between tiers it opens and closes against the applied spec, one sentence
    /// each (empty when it touches no rule, or the environment was never applied).
    pub(crate) reachability: Vec<String>,
}

pub(crate) enum EnvWork {
    Record(Box<Found>),
    /// The folder is back to its last applied state: open changes are moot.
    BackToApplied(String),
}

/// The spec of `env` at `commit`, or every error of its folder and its files: how every reader
/// of the mirror (changes, plans, reverts, `tierdeck cost --against`) loads a spec.
pub fn load_at(
    m: &git::Mirror,
    commit: Oid,
    env: &str,
) -> anyhow::Result<Result<EnvironmentSpec, Vec<SpecError>>> {
    let (files, errors) = m.env_files(commit, env)?;
    Ok(load_folder(env, &files, errors))
}

fn touches(m: &git::Mirror, commit: Oid, env: &str) -> bool {
    m.env_tree(commit, env).ok().flatten() != m.parent_env_tree(commit, env).ok().flatten()
}

/// Everyone who authored or committed a commit after `applied` up to `commit` that touched the
/// environment's folder, sorted by e-mail, once each. With nothing applied, the commits that
/// made the folder, as far back as `FIRST_SIGHT_DEPTH`, and `commit` itself.
fn authors(
    m: &git::Mirror,
    applied: Option<Oid>,
    commit: Oid,
    env: &str,
) -> anyhow::Result<Vec<Person>> {
    let limit = if applied.is_some() {
        MAX_NEW_COMMITS
    } else {
        FIRST_SIGHT_DEPTH
    };
    let mut people = Vec::new();
    for c in m.new_commits(applied, commit, limit)? {
        if c == commit || touches(m, c, env) {
            people.extend(m.commit_people(c)?);
        }
    }
    people.sort_by(|a: &Person, b| a.email.cmp(&b.email).then(a.name.cmp(&b.name)));
    people.dedup_by(|a, b| a.email == b.email);
    Ok(people)
}

/// Works out, from the mirror alone, what each environment needs: a change to record (judged
/// afterwards, by the watcher), or its folder back to its applied state.
pub(crate) fn plan_work(
    m: &git::Mirror,
    head: Oid,
    new_commits: &[Oid],
    known: &HashMap<String, Known>,
) -> anyhow::Result<Vec<EnvWork>> {
    let mut out = Vec::new();
    for env in m.environments(head)? {
        let k = known.get(&env);
        let applied = k
            .and_then(|k| k.last_applied.as_deref())
            .and_then(|a| Oid::from_str(a).ok());
        let applied_tree = match applied {
            Some(a) if m.has_commit(a) => m.env_tree(a, &env)?,
            _ => None,
        };
        if applied_tree.is_some() && applied_tree == m.env_tree(head, &env)? {
            out.push(EnvWork::BackToApplied(env));
            continue;
        }
        let commit = match new_commits.iter().find(|c| touches(m, **c, &env)) {
            Some(c) => *c,
            None if k.is_some_and(|k| k.has_changes) => continue,
            None => m
                .new_commits(None, head, FIRST_SIGHT_DEPTH)?
                .into_iter()
                .find(|c| touches(m, *c, &env))
                .unwrap_or(head),
        };
        out.push(EnvWork::Record(Box::new(found(m, env, commit, applied)?)));
    }
    Ok(out)
}

/// Environment `env` at `commit`, against its last applied commit `applied`: the commit's
/// header, the folder's diff and the authors since.
pub(crate) fn found(
    m: &git::Mirror,
    env: String,
    commit: Oid,
    applied: Option<Oid>,
) -> anyhow::Result<Found> {
    Ok(Found {
        commit: m.commit_info(commit)?,
        base: applied.map(|a| a.to_string()),
        files: m.env_diff(applied, commit, &env)?,
        authors: authors(m, applied.filter(|a| m.has_commit(*a)), commit, &env)?,
        env,
    })
}
