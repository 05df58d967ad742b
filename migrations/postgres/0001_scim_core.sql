-- scimbridge core schema: sources and their tokens, SCIM users and groups, memberships as a
-- relation, and the change journal the sync engine consumes.
-- Case-insensitive uniqueness uses columns lowered by the server (Unicode-aware, identical on
-- both backends), not citext, so the same rule holds on PostgreSQL and SQLite.

CREATE TABLE sources (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT NOT NULL CONSTRAINT sources_name_key UNIQUE,
    -- auto | strict | okta | entra | authentik | ping | generic
    compat      TEXT NOT NULL DEFAULT 'auto',
    -- what `auto` detected from the client's requests (NULL until detected)
    detected_compat TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE tokens (
    id           UUID PRIMARY KEY,
    -- NULL for admin-API tokens
    source_id    BIGINT REFERENCES sources (id),
    kind         TEXT NOT NULL CHECK (kind IN ('scim', 'admin')),
    -- SHA-256 of the token; the token itself is shown once and never stored
    digest       BYTEA NOT NULL CONSTRAINT tokens_digest_key UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    CHECK ((kind = 'scim') = (source_id IS NOT NULL))
);

CREATE TABLE users (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY,
    id              UUID PRIMARY KEY,
    source_id       BIGINT NOT NULL REFERENCES sources (id),
    user_name       TEXT NOT NULL,
    -- userName is unique case-insensitively across all sources (AWS requires it)
    user_name_lower TEXT NOT NULL CONSTRAINT users_user_name_key UNIQUE,
    external_id     TEXT,
    display_name    TEXT,
    active          BOOLEAN NOT NULL DEFAULT TRUE,
    -- the SCIM resource without id, meta, groups and password
    doc             JSONB NOT NULL,
    version         BIGINT NOT NULL DEFAULT 1,
    created_at      TIMESTAMPTZ NOT NULL,
    modified_at     TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX users_seq_idx ON users (seq);
CREATE INDEX users_source_seq_idx ON users (source_id, seq);
CREATE INDEX users_external_id_idx ON users (source_id, external_id);

CREATE TABLE groups (
    seq                BIGINT GENERATED ALWAYS AS IDENTITY,
    id                 UUID PRIMARY KEY,
    source_id          BIGINT NOT NULL REFERENCES sources (id),
    display_name       TEXT NOT NULL,
    -- displayName is unique case-insensitively across all sources (Entra and AWS rely on it)
    display_name_lower TEXT NOT NULL CONSTRAINT groups_display_name_key UNIQUE,
    external_id        TEXT,
    doc                JSONB NOT NULL,
    version            BIGINT NOT NULL DEFAULT 1,
    created_at         TIMESTAMPTZ NOT NULL,
    modified_at        TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX groups_seq_idx ON groups (seq);
CREATE INDEX groups_source_seq_idx ON groups (source_id, seq);
CREATE INDEX groups_external_id_idx ON groups (source_id, external_id);

-- One row per direct member: adding or removing one member of a huge group touches one row.
-- member_id names a user or a group of the same source; rows are removed explicitly when the
-- member is deleted (it can be either table, so there is no foreign key on it).
CREATE TABLE group_members (
    group_id    UUID NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    member_id   UUID NOT NULL,
    member_type TEXT NOT NULL CHECK (member_type IN ('User', 'Group')),
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX group_members_member_idx ON group_members (member_id);

-- Every acknowledged write appends here in the same transaction.
CREATE TABLE change_journal (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            TIMESTAMPTZ NOT NULL,
    source_id     BIGINT NOT NULL REFERENCES sources (id),
    token_id      UUID,
    resource_type TEXT NOT NULL CHECK (resource_type IN ('User', 'Group')),
    resource_id   UUID NOT NULL,
    -- create | replace | patch | delete
    action        TEXT NOT NULL,
    -- what changed, e.g. {"active": false} or {"members_added": [...], "members_removed": [...]}
    detail        JSONB
);
CREATE INDEX change_journal_resource_idx ON change_journal (resource_id);
