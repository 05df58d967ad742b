-- The sync engine's state: which AWS principal each SCIM resource is (and whether the bridge
-- created or adopted it), what was last pushed, the memberships it made, its runs and an audit
-- row for every AWS change. Only principals listed here are ever changed or deleted in AWS.

CREATE TABLE aws_principals (
    kind        TEXT NOT NULL CHECK (kind IN ('User', 'Group')),
    -- the SCIM resource (users.id / groups.id); kept after the resource is deleted, until the
    -- AWS principal is deleted too
    resource_id UUID NOT NULL,
    aws_id      TEXT NOT NULL,
    ownership   TEXT NOT NULL CHECK (ownership IN ('created', 'adopted')),
    -- the name it has in AWS (userName / displayName), for the audit log and reports
    name        TEXT NOT NULL,
    -- the attributes last pushed (the AWS profile's shape), to send only what changed
    pushed      JSONB NOT NULL,
    pushed_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, resource_id)
);
CREATE UNIQUE INDEX aws_principals_aws_id_key ON aws_principals (kind, aws_id);

-- Memberships the bridge made (group and user by SCIM id; membership id from AWS).
CREATE TABLE aws_memberships (
    group_id      UUID NOT NULL,
    user_id       UUID NOT NULL,
    membership_id TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);

CREATE TABLE sync_runs (
    id          UUID PRIMARY KEY,
    trigger     TEXT NOT NULL,
    dry_run     BOOLEAN NOT NULL,
    -- running | succeeded | partial | failed | refused
    status      TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    -- what `scimbridge sync --json` prints
    report      JSONB NOT NULL
);
CREATE INDEX sync_runs_started_idx ON sync_runs (started_at);

-- One row per AWS change, with names (CloudTrail shows only ids).
CREATE TABLE audit_log (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL,
    run_id      UUID NOT NULL,
    action      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    aws_id      TEXT,
    detail      JSONB
);

-- One sync run at a time across every replica and CLI: a lease, renewed while the run lasts,
-- that a crashed holder loses when it expires.
CREATE TABLE sync_lease (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    holder      UUID NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
