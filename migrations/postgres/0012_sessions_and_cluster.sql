-- Sessions, the replicas and their leader (as SQLite's 0012), and a notification on every
-- write so each replica's kept reads follow the others' writes.
CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    data          TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at_ms);

CREATE TABLE replicas (
    id         TEXT PRIMARY KEY,
    host       TEXT NOT NULL,
    pid        BIGINT NOT NULL,
    version    TEXT NOT NULL,
    started_at TEXT NOT NULL,
    seen_at    TEXT NOT NULL
);

CREATE TABLE leader (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    replica_id  TEXT NOT NULL,
    term        BIGINT NOT NULL,
    since       TEXT NOT NULL,
    lease_until TEXT NOT NULL
);

-- Delivered when the writing transaction commits (one per transaction: PostgreSQL folds equal
-- notifications). Every table has the trigger; tests/tests/store.rs fails when one lacks it.
CREATE FUNCTION tierdeck_notify_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tierdeck_writes', '');
    RETURN NULL;
END;
$$;
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT tablename FROM pg_tables
             WHERE schemaname = current_schema() AND tablename NOT LIKE '\_sqlx%'
    LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION tierdeck_notify_write()',
                       t.tablename || '_notify_write', t.tablename);
    END LOOP;
END;
$$;
