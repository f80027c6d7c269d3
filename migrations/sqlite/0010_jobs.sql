-- Work that outlives a request (domain::job): planning a change, auto-apply, running an apply,
-- what follows it, the watch after it, and notifications. A job is written in the transaction
-- of the state change that asks for it and taken by one worker; after a crash the next worker
-- finishes it or fails it honestly.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('plan', 'auto_apply', 'apply', 'after_apply',
                     'watch', 'notify')),
    state        TEXT NOT NULL CHECK (state IN ('queued', 'running', 'retrying', 'done',
                     'failed')),
    -- What it is about, for the change page and the Admin page.
    change_id    INTEGER REFERENCES changes (id),
    environment  TEXT,
    -- What the handler needs (JSON, by kind).
    payload      TEXT NOT NULL DEFAULT '{}',
    -- At most one job waiting per key (a change planned twice before its plan job runs is
    -- planned once); NULL: no such limit.
    dedup_key    TEXT,
    -- Tries taken, and failed tries in a row (the retry policy counts these).
    attempts     INTEGER NOT NULL DEFAULT 0,
    failures     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    last_error   TEXT,
    run_after    TEXT NOT NULL,
    -- The worker running it: a process as the environment lock names one, and until when its
    -- claim holds (it renews it while the job runs; an expired lease is free to take).
    holder_id    TEXT,
    holder_host  TEXT,
    holder_pid   INTEGER,
    lease_until  TEXT,
    requested_by TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    finished_at  TEXT
);
CREATE UNIQUE INDEX jobs_waiting_by_key ON jobs (dedup_key)
    WHERE state IN ('queued', 'retrying');
CREATE INDEX jobs_due ON jobs (state, run_after);
CREATE INDEX jobs_by_change ON jobs (change_id, id);
