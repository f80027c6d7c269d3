-- The spec repository's state, its environments and the changes recorded from its commits.

CREATE TABLE repo_state (
    id                   INTEGER PRIMARY KEY CHECK (id = 1),
    url                  TEXT NOT NULL,
    branch               TEXT NOT NULL,
    head_commit          TEXT,
    last_fetch_at        TEXT,
    last_success_at      TEXT,
    last_error           TEXT,
    last_error_at        TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE environments (
    name                TEXT PRIMARY KEY,
    last_applied_commit TEXT,
    created_at          TEXT NOT NULL
);

CREATE TABLE changes (
    id            INTEGER PRIMARY KEY,
    environment   TEXT NOT NULL REFERENCES environments (name),
    commit_sha    TEXT NOT NULL,
    -- The environment's last applied commit when the change was recorded: the diffs' base.
    base_commit   TEXT,
    author_name   TEXT NOT NULL,
    author_email  TEXT NOT NULL,
    committed_at  TEXT NOT NULL,
    message       TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('invalid', 'blocked', 'pending', 'approved',
                      'rejected', 'superseded', 'applying', 'applied', 'failed', 'interrupted')),
    file_diff     TEXT NOT NULL, -- JSON: per-file unified diffs
    semantic_diff TEXT NOT NULL, -- JSON: field-level edits
    spec_errors   TEXT NOT NULL, -- JSON: errors with file, line, column
    superseded_by INTEGER REFERENCES changes (id),
    -- The latest plan against live AWS (JSON), its hash and when it was made.
    plan          TEXT,
    plan_hash     TEXT,
    planned_at    TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    UNIQUE (environment, commit_sha)
);
CREATE INDEX changes_by_environment ON changes (environment, id);
CREATE INDEX changes_by_status ON changes (status, id);
