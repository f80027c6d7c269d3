-- Guardrails, reviews (approvals, rejections, comments), emergency applies and notifications.

-- Guardrails the change's spec breaks (JSON list); any makes the change `blocked`.
ALTER TABLE changes ADD COLUMN guardrails TEXT NOT NULL DEFAULT '[]';

-- An approval is pinned to the plan hash it approved; it stops counting when voided (the plan
-- changed) or when it is older than the configured lifetime.
CREATE TABLE reviews (
    id          INTEGER PRIMARY KEY,
    change_id   INTEGER NOT NULL REFERENCES changes (id),
    user_id     INTEGER NOT NULL REFERENCES users (id),
    user_name   TEXT NOT NULL,
    verdict     TEXT NOT NULL CHECK (verdict IN ('approve', 'reject', 'comment')),
    plan_hash   TEXT,          -- approvals: the plan approved
    comment     TEXT,          -- the comment; for a rejection, its reason
    created_at  TEXT NOT NULL,
    voided_at   TEXT,
    void_reason TEXT
);
CREATE INDEX reviews_by_change ON reviews (change_id, id);
CREATE UNIQUE INDEX reviews_one_live_approval ON reviews (change_id, user_id)
    WHERE verdict = 'approve' AND voided_at IS NULL;

-- An apply outside the change windows, and why.
ALTER TABLE apply_runs ADD COLUMN emergency_reason TEXT;

-- Outgoing webhooks, kept until delivered or given up: the admins' delivery log.
CREATE TABLE notifications (
    id              INTEGER PRIMARY KEY,
    event           TEXT NOT NULL,
    environment     TEXT,
    change_id       INTEGER,
    receiver        TEXT NOT NULL, -- `slack` or `webhook`: which configured URL
    body            TEXT NOT NULL, -- JSON sent
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    delivered_at    TEXT
);
CREATE INDEX notifications_due ON notifications (status, next_attempt_at);
