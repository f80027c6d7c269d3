-- Applying changes: runs and their steps, the per-environment lock, drift, and changes made by
-- `reconcile` (which re-apply the last applied commit, so they are not unique per commit).

-- `changes` is rebuilt to add `kind` and drop UNIQUE (environment, commit_sha), which becomes a
-- partial index over commit changes. The new table refers to itself as `changes_new` (the
-- rename rewrites that), so dropping the old table breaks no foreign key.
CREATE TABLE changes_new (
    id            INTEGER PRIMARY KEY,
    environment   TEXT NOT NULL REFERENCES environments (name),
    -- `commit`: recorded from a commit; `reconcile`: made to undo drift.
    kind          TEXT NOT NULL DEFAULT 'commit' CHECK (kind IN ('commit', 'reconcile')),
    commit_sha    TEXT NOT NULL,
    base_commit   TEXT,
    author_name   TEXT NOT NULL,
    author_email  TEXT NOT NULL,
    committed_at  TEXT NOT NULL,
    message       TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('invalid', 'blocked', 'pending', 'approved',
                      'rejected', 'superseded', 'applying', 'applied', 'failed', 'interrupted')),
    file_diff     TEXT NOT NULL,
    semantic_diff TEXT NOT NULL,
    spec_errors   TEXT NOT NULL,
    superseded_by INTEGER REFERENCES changes_new (id),
    plan          TEXT,
    plan_hash     TEXT,
    planned_at    TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
INSERT INTO changes_new (id, environment, kind, commit_sha, base_commit, author_name,
    author_email, committed_at, message, status, file_diff, semantic_diff, spec_errors,
    superseded_by, plan, plan_hash, planned_at, created_at, updated_at)
SELECT id, environment, 'commit', commit_sha, base_commit, author_name, author_email,
    committed_at, message, status, file_diff, semantic_diff, spec_errors, superseded_by, plan,
    plan_hash, planned_at, created_at, updated_at
FROM changes;
DROP TABLE changes;
ALTER TABLE changes_new RENAME TO changes;
CREATE UNIQUE INDEX changes_by_commit ON changes (environment, commit_sha) WHERE kind = 'commit';
CREATE INDEX changes_by_environment ON changes (environment, id);
CREATE INDEX changes_by_status ON changes (status, id);

-- One attempt to apply a change: the plan it applied and how it ended.
CREATE TABLE apply_runs (
    id          INTEGER PRIMARY KEY,
    change_id   INTEGER NOT NULL REFERENCES changes (id),
    environment TEXT NOT NULL REFERENCES environments (name),
    started_by  TEXT NOT NULL,
    plan_hash   TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('applying', 'applied', 'failed', 'interrupted')),
    error       TEXT,
    started_at  TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX apply_runs_by_change ON apply_runs (change_id, id);

-- The plan's operations in order; each is written before and after its AWS call.
CREATE TABLE apply_steps (
    run_id      INTEGER NOT NULL REFERENCES apply_runs (id),
    position    INTEGER NOT NULL,
    operation   TEXT NOT NULL, -- JSON: domain::plan::Operation
    status      TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed',
                    'interrupted')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    request_id  TEXT,
    error       TEXT,
    started_at  TEXT,
    finished_at TEXT,
    PRIMARY KEY (run_id, position)
);

-- At most one apply per environment. The holder is a running process; a lock whose holder is
-- gone (its process died on this host, or it stopped beating) is free.
CREATE TABLE environment_locks (
    environment  TEXT PRIMARY KEY REFERENCES environments (name),
    change_id    INTEGER NOT NULL REFERENCES changes (id),
    run_id       INTEGER NOT NULL REFERENCES apply_runs (id),
    holder_host  TEXT NOT NULL,
    holder_pid   INTEGER NOT NULL,
    holder_id    TEXT NOT NULL, -- random per process start
    acquired_at  TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL
);

-- The latest drift check: the plan of the last applied spec against live AWS.
ALTER TABLE environments ADD COLUMN drift TEXT;           -- JSON plan when not empty
ALTER TABLE environments ADD COLUMN drift_hash TEXT;
ALTER TABLE environments ADD COLUMN drifted_since TEXT;
ALTER TABLE environments ADD COLUMN drift_checked_at TEXT;
ALTER TABLE environments ADD COLUMN drift_error TEXT;      -- why the last check could not run
