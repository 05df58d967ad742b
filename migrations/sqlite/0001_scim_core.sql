-- scimbridge core schema for SQLite; mirrors migrations/postgres/0001_scim_core.sql.
-- UUIDs are TEXT, timestamps are TEXT in one fixed RFC 3339 form (UTC, microseconds) so that
-- text order is time order, JSON documents are TEXT handled with the JSON1 functions.

CREATE TABLE sources (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL CONSTRAINT sources_name_key UNIQUE,
    compat          TEXT NOT NULL DEFAULT 'auto',
    detected_compat TEXT,
    created_at      TEXT NOT NULL
);

CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    source_id    INTEGER REFERENCES sources (id),
    kind         TEXT NOT NULL CHECK (kind IN ('scim', 'admin')),
    digest       BLOB NOT NULL CONSTRAINT tokens_digest_key UNIQUE,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    last_used_at TEXT,
    revoked_at   TEXT,
    CHECK ((kind = 'scim') = (source_id IS NOT NULL))
);

CREATE TABLE users (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL CONSTRAINT users_id_key UNIQUE,
    source_id       INTEGER NOT NULL REFERENCES sources (id),
    user_name       TEXT NOT NULL,
    user_name_lower TEXT NOT NULL CONSTRAINT users_user_name_key UNIQUE,
    external_id     TEXT,
    display_name    TEXT,
    active          INTEGER NOT NULL DEFAULT 1,
    doc             TEXT NOT NULL,
    version         INTEGER NOT NULL DEFAULT 1,
    created_at      TEXT NOT NULL,
    modified_at     TEXT NOT NULL
);
CREATE INDEX users_source_seq_idx ON users (source_id, seq);
CREATE INDEX users_external_id_idx ON users (source_id, external_id);

CREATE TABLE groups (
    seq                INTEGER PRIMARY KEY,
    id                 TEXT NOT NULL CONSTRAINT groups_id_key UNIQUE,
    source_id          INTEGER NOT NULL REFERENCES sources (id),
    display_name       TEXT NOT NULL,
    display_name_lower TEXT NOT NULL CONSTRAINT groups_display_name_key UNIQUE,
    external_id        TEXT,
    doc                TEXT NOT NULL,
    version            INTEGER NOT NULL DEFAULT 1,
    created_at         TEXT NOT NULL,
    modified_at        TEXT NOT NULL
);
CREATE INDEX groups_source_seq_idx ON groups (source_id, seq);
CREATE INDEX groups_external_id_idx ON groups (source_id, external_id);

CREATE TABLE group_members (
    group_id    TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    member_id   TEXT NOT NULL,
    member_type TEXT NOT NULL CHECK (member_type IN ('User', 'Group')),
    PRIMARY KEY (group_id, member_id)
) WITHOUT ROWID;
CREATE INDEX group_members_member_idx ON group_members (member_id);

CREATE TABLE change_journal (
    -- AUTOINCREMENT: a sequence number is never reused, even after old rows are pruned, so a
    -- reader's cursor never skips a change.
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    at            TEXT NOT NULL,
    source_id     INTEGER NOT NULL REFERENCES sources (id),
    token_id      TEXT,
    resource_type TEXT NOT NULL CHECK (resource_type IN ('User', 'Group')),
    resource_id   TEXT NOT NULL,
    action        TEXT NOT NULL,
    detail        TEXT
);
CREATE INDEX change_journal_resource_idx ON change_journal (resource_id);
