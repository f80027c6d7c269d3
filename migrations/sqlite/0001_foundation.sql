-- Users, API tokens, failed-login records and the audit log.
-- Times are RFC 3339 text in UTC with milliseconds (`2026-11-25T10:00:00.000Z`): they sort as text.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    email         TEXT UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('viewer', 'approver', 'operator', 'admin')),
    password_hash TEXT NOT NULL,
    -- Bumped when a password is reset or the user is disabled: sessions carrying an older epoch
    -- are no longer accepted.
    auth_epoch    INTEGER NOT NULL DEFAULT 0,
    disabled_at   TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE api_tokens (
    id             INTEGER PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users (id),
    label          TEXT NOT NULL,
    -- The first characters of the token, shown so people can tell their tokens apart.
    prefix         TEXT NOT NULL,
    -- SHA-256 of the whole token: tokens are long random strings, so a fast hash is enough.
    token_hash     TEXT NOT NULL UNIQUE,
    created_at     TEXT NOT NULL,
    last_used_at   TEXT,
    last_used_addr TEXT,
    revoked_at     TEXT
);
CREATE UNIQUE INDEX api_tokens_active_label ON api_tokens (user_id, label) WHERE revoked_at IS NULL;

CREATE TABLE login_failures (
    id          INTEGER PRIMARY KEY,
    at_ms       INTEGER NOT NULL,
    user_name   TEXT NOT NULL,
    client_addr TEXT NOT NULL
);
CREATE INDEX login_failures_by_user ON login_failures (user_name, at_ms);
CREATE INDEX login_failures_by_addr ON login_failures (client_addr, at_ms);

CREATE TABLE audit_events (
    seq         INTEGER PRIMARY KEY, -- 1, 2, 3, …: set by the writer, never reused
    at          TEXT NOT NULL,
    actor_kind  TEXT NOT NULL CHECK (actor_kind IN ('user', 'token', 'system')),
    actor       TEXT NOT NULL,
    token       TEXT,
    action      TEXT NOT NULL,
    environment TEXT,
    target      TEXT,
    detail      TEXT NOT NULL,
    client_addr TEXT,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_events_by_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_by_action ON audit_events (action, seq);
CREATE INDEX audit_events_by_environment ON audit_events (environment, seq);
CREATE INDEX audit_events_by_time ON audit_events (at);

-- The last event's sequence number and hash, written with each event: catches rows cut off the end.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT NOT NULL
);

CREATE TRIGGER audit_events_append_only_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_append_only_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
