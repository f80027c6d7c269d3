-- Scaling history: a snapshot of a group whenever its capacity changes, and Auto Scaling's own
-- activities (deduplicated by their id).

CREATE TABLE group_snapshots (
    id          INTEGER PRIMARY KEY,
    environment TEXT NOT NULL,
    group_name  TEXT NOT NULL,
    at          TEXT NOT NULL,
    min         INTEGER NOT NULL,
    max         INTEGER NOT NULL,
    desired     INTEGER NOT NULL,
    in_service  INTEGER NOT NULL
);
CREATE INDEX group_snapshots_by_group ON group_snapshots (environment, group_name, at);
CREATE INDEX group_snapshots_by_time ON group_snapshots (at);

CREATE TABLE scaling_activities (
    activity_id TEXT PRIMARY KEY,
    environment TEXT NOT NULL,
    group_name  TEXT NOT NULL,
    status      TEXT NOT NULL,
    description TEXT NOT NULL,
    cause       TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    ended_at    TEXT
);
CREATE INDEX scaling_activities_by_environment ON scaling_activities (environment, started_at);
