-- After an apply (real AWS takes time): steps that settle, the watch of the SLOs after an apply,
-- the `degraded` status it can give, and `revert` changes.

-- `changes` is rebuilt to widen its CHECKs (status `degraded`, kind `revert`) and to add
-- `reverts`, the change a revert undoes. Rows that refer to `changes` (reviews, apply runs, the
-- lock) keep their ids: the rows are kept aside, the table is made again under its own name and
-- filled from them, and the foreign keys are checked at the end of the migration, when every
-- row is back. No table is renamed, so no reference to `changes` is rewritten.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE changes_kept AS SELECT * FROM changes;
DROP TABLE changes;
CREATE TABLE changes (
    id            INTEGER PRIMARY KEY,
    environment   TEXT NOT NULL REFERENCES environments (name),
    -- `commit`: recorded from a commit; `reconcile`: made to undo drift; `revert`: made to go
    -- back to the commit applied before another change.
    kind          TEXT NOT NULL DEFAULT 'commit'
                      CHECK (kind IN ('commit', 'reconcile', 'revert')),
    commit_sha    TEXT NOT NULL,
    base_commit   TEXT,
    author_name   TEXT NOT NULL,
    author_email  TEXT NOT NULL,
    committed_at  TEXT NOT NULL,
    message       TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('invalid', 'blocked', 'pending', 'approved',
                      'rejected', 'superseded', 'applying', 'applied', 'failed', 'interrupted',
                      'degraded')),
    file_diff     TEXT NOT NULL,
    semantic_diff TEXT NOT NULL,
    spec_errors   TEXT NOT NULL,
    superseded_by INTEGER REFERENCES changes (id),
    plan          TEXT,
    plan_hash     TEXT,
    planned_at    TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    guardrails    TEXT NOT NULL DEFAULT '[]',
    authors       TEXT NOT NULL DEFAULT '[]',
    policy_edits  TEXT NOT NULL DEFAULT '[]',
    reverts       INTEGER REFERENCES changes (id)
);
INSERT INTO changes (id, environment, kind, commit_sha, base_commit, author_name,
    author_email, committed_at, message, status, file_diff, semantic_diff, spec_errors,
    superseded_by, plan, plan_hash, planned_at, created_at, updated_at, guardrails, authors,
    policy_edits)
SELECT id, environment, kind, commit_sha, base_commit, author_name, author_email,
    committed_at, message, status, file_diff, semantic_diff, spec_errors, superseded_by, plan,
    plan_hash, planned_at, created_at, updated_at, guardrails, authors, policy_edits
FROM changes_kept;
DROP TABLE changes_kept;
CREATE UNIQUE INDEX changes_by_commit ON changes (environment, commit_sha) WHERE kind = 'commit';
CREATE INDEX changes_by_environment ON changes (environment, id);
CREATE INDEX changes_by_status ON changes (status, id);

-- What a step waits for after its call, while AWS carries it out: JSON
-- (domain::change::Settling), NULL for a step that does not settle.
ALTER TABLE apply_steps ADD COLUMN settling TEXT;

-- After a revert is applied: the commit it went back from, which stays unapplied until a newer
-- commit is applied.
ALTER TABLE environments ADD COLUMN reverted_from TEXT;

-- The watch of an environment's SLOs after an apply.
CREATE TABLE watches (
    change_id     INTEGER PRIMARY KEY REFERENCES changes (id),
    environment   TEXT NOT NULL REFERENCES environments (name),
    minutes       INTEGER NOT NULL,
    auto_revert   INTEGER NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('watching', 'clean', 'degraded', 'stopped')),
    started_at    TEXT NOT NULL,
    until_at      TEXT NOT NULL,
    evaluations   INTEGER NOT NULL DEFAULT 0,
    last_at       TEXT,
    -- The highest burn rate of the last evaluation (× the budget), over the page windows.
    burn          REAL,
    -- When a page alert was already firing as the apply started: the 5-minute burn rate then.
    -- The watch degrades the change only if it rises by a fifth (the change may be the fix).
    burn_before   REAL,
    -- The alert that fired, in words, or why the watch stopped.
    reason        TEXT,
    revert_change INTEGER REFERENCES changes (id)
);
CREATE INDEX watches_by_state ON watches (state, until_at);
