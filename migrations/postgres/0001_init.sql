-- Nexum schema v1 (PostgreSQL dialect; sqlite/0001_init.sql is the same schema).
-- Times are unix milliseconds (BIGINT). IDs are prefixed ULIDs (ws_, mem_, key_, plg_, conn_, sec_, aud_).

CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE members (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    email         TEXT NOT NULL,
    name          TEXT NOT NULL DEFAULT '',
    role          TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at    BIGINT NOT NULL,
    UNIQUE (workspace_id, email)
);

CREATE TABLE api_keys (
    id                     TEXT PRIMARY KEY,
    workspace_id           TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    member_id              TEXT REFERENCES members(id) ON DELETE SET NULL,
    name                   TEXT NOT NULL,
    prefix                 TEXT NOT NULL,
    hash                   BYTEA NOT NULL UNIQUE,
    scopes                 TEXT NOT NULL,
    rate_limit_per_minute  BIGINT NOT NULL,
    expires_at             BIGINT,
    revoked_at             BIGINT,
    last_used_at           BIGINT,
    created_at             BIGINT NOT NULL
);
CREATE INDEX api_keys_workspace ON api_keys (workspace_id, id);

CREATE TABLE components (
    digest      TEXT PRIMARY KEY,
    bytes       BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE installations (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    connector_id  TEXT NOT NULL,
    version       TEXT NOT NULL,
    digest        TEXT NOT NULL REFERENCES components(digest),
    manifest      TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    UNIQUE (workspace_id, connector_id)
);

CREATE TABLE connections (
    id                 TEXT PRIMARY KEY,
    workspace_id       TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    installation_id    TEXT NOT NULL REFERENCES installations(id),
    name               TEXT NOT NULL,
    auth_scheme        TEXT,
    variables          TEXT NOT NULL,
    status             TEXT NOT NULL,
    last_error         TEXT,
    last_health_check  BIGINT,
    last_used_at       BIGINT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX connections_workspace ON connections (workspace_id, id);

-- Encrypted secrets: AES-256-GCM, random nonce per write, AAD binds workspace + row.
CREATE TABLE secrets (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL,
    owner_id      TEXT NOT NULL UNIQUE,
    key_id        TEXT NOT NULL,
    nonce         BYTEA NOT NULL,
    ciphertext    BYTEA NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX secrets_key ON secrets (key_id);

CREATE TABLE audit_log (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    target        TEXT NOT NULL,
    detail        TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL
);
CREATE INDEX audit_log_workspace ON audit_log (workspace_id, id);

CREATE TABLE idempotency_keys (
    workspace_id  TEXT NOT NULL,
    key           TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    status_code   BIGINT,
    response      TEXT,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, key)
);

-- Per-connection usage, flushed in batches from memory: call and error counts plus a
-- latency histogram (JSON array of counts per bucket, bounds in code).
CREATE TABLE connection_usage (
    connection_id    TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL,
    calls            BIGINT NOT NULL,
    errors           BIGINT NOT NULL,
    latency_buckets  TEXT NOT NULL
);
