-- The sync engine's state; mirrors migrations/postgres/0002_aws_sync.sql (UUIDs, timestamps
-- and JSON as TEXT, as in 0001).

CREATE TABLE aws_principals (
    kind        TEXT NOT NULL CHECK (kind IN ('User', 'Group')),
    resource_id TEXT NOT NULL,
    aws_id      TEXT NOT NULL,
    ownership   TEXT NOT NULL CHECK (ownership IN ('created', 'adopted')),
    name        TEXT NOT NULL,
    pushed      TEXT NOT NULL,
    pushed_at   TEXT NOT NULL,
    PRIMARY KEY (kind, resource_id)
);
CREATE UNIQUE INDEX aws_principals_aws_id_key ON aws_principals (kind, aws_id);

CREATE TABLE aws_memberships (
    group_id      TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    membership_id TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);

CREATE TABLE sync_runs (
    id          TEXT PRIMARY KEY,
    trigger     TEXT NOT NULL,
    dry_run     INTEGER NOT NULL,
    status      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    report      TEXT NOT NULL
);
CREATE INDEX sync_runs_started_idx ON sync_runs (started_at);

CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    action      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    aws_id      TEXT,
    detail      TEXT
);

CREATE TABLE sync_lease (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    holder      TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
