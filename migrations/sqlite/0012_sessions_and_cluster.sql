-- Sessions in the store's own table (they were in tower-sessions' table, made outside the
-- migrations; everyone signs in again once), and the replicas sharing one database with the
-- one that leads the periodic work.
DROP TABLE IF EXISTS tower_sessions;
CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    data          TEXT NOT NULL, -- JSON: tower_sessions::session::Record
    expires_at_ms INTEGER NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at_ms);

-- Each running `tierdeck serve`, as it last said it was alive.
CREATE TABLE replicas (
    id         TEXT PRIMARY KEY, -- random per process start, as the locks' holder_id
    host       TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    version    TEXT NOT NULL,
    started_at TEXT NOT NULL,
    seen_at    TEXT NOT NULL
);

-- The replica that runs the periodic work, until when, and the term it leads in: the term
-- grows with each new leader and fences the work of an old one.
CREATE TABLE leader (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    replica_id  TEXT NOT NULL,
    term        INTEGER NOT NULL,
    since       TEXT NOT NULL,
    lease_until TEXT NOT NULL
);
