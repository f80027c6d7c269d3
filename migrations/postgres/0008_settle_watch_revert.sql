-- After an apply: steps that settle, the watch of the SLOs after an apply, the `degraded`
-- status it can give, and `revert` changes (SQLite rebuilds `changes` to widen its CHECKs;
-- PostgreSQL replaces the constraints).

ALTER TABLE changes DROP CONSTRAINT changes_kind_check;
ALTER TABLE changes ADD CONSTRAINT changes_kind_check
    CHECK (kind IN ('commit', 'reconcile', 'revert'));
ALTER TABLE changes DROP CONSTRAINT changes_status_check;
ALTER TABLE changes ADD CONSTRAINT changes_status_check
    CHECK (status IN ('invalid', 'blocked', 'pending', 'approved', 'rejected', 'superseded',
        'applying', 'applied', 'failed', 'interrupted', 'degraded'));
ALTER TABLE changes ADD COLUMN reverts BIGINT REFERENCES changes (id);

ALTER TABLE apply_steps ADD COLUMN settling TEXT;

ALTER TABLE environments ADD COLUMN reverted_from TEXT;

CREATE TABLE watches (
    change_id     BIGINT PRIMARY KEY REFERENCES changes (id),
    environment   TEXT NOT NULL REFERENCES environments (name),
    minutes       BIGINT NOT NULL,
    auto_revert   BIGINT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('watching', 'clean', 'degraded', 'stopped')),
    started_at    TEXT NOT NULL,
    until_at      TEXT NOT NULL,
    evaluations   BIGINT NOT NULL DEFAULT 0,
    last_at       TEXT,
    burn          DOUBLE PRECISION,
    burn_before   DOUBLE PRECISION,
    reason        TEXT,
    revert_change BIGINT REFERENCES changes (id)
);
CREATE INDEX watches_by_state ON watches (state, until_at);
