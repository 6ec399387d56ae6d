-- OAuth2 connections: provider apps (client id here, client secret sealed in `secrets`),
-- authorization flows (single-use state, sealed PKCE verifier), token expiry and refresh
-- failure count on connections, and the event outbox webhooks will deliver.

ALTER TABLE connections ADD COLUMN token_expires_at BIGINT;
ALTER TABLE connections ADD COLUMN refresh_failures BIGINT NOT NULL DEFAULT 0;
CREATE INDEX connections_token_expiry ON connections (token_expires_at);

-- owner is a workspace id, or 'operator' for an app every workspace may use.
CREATE TABLE oauth_apps (
    id            TEXT PRIMARY KEY,
    owner         TEXT NOT NULL,
    connector_id  TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (owner, connector_id)
);

-- One authorization-code flow. The state sent to the provider is stored only as its SHA-256.
CREATE TABLE oauth_flows (
    id                   TEXT PRIMARY KEY,
    state_hash           TEXT NOT NULL UNIQUE,
    workspace_id         TEXT NOT NULL,
    actor                TEXT NOT NULL,
    installation_id      TEXT NOT NULL,
    connection_id        TEXT,
    name                 TEXT NOT NULL,
    auth_scheme          TEXT NOT NULL,
    variables            TEXT NOT NULL,
    scopes               TEXT NOT NULL,
    return_url           TEXT,
    verifier_key_id      TEXT NOT NULL,
    verifier_nonce       BLOB NOT NULL,
    verifier_ciphertext  BLOB NOT NULL,
    status               TEXT NOT NULL,
    error                TEXT,
    created_at           BIGINT NOT NULL,
    expires_at           BIGINT NOT NULL,
    completed_at         BIGINT
);
CREATE INDEX oauth_flows_workspace ON oauth_flows (workspace_id, id);

-- Outbox of events for webhooks (connection.status_changed, connection.refresh_failed, …).
CREATE TABLE events (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL,
    type          TEXT NOT NULL,
    payload       TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    delivered_at  BIGINT
);
CREATE INDEX events_workspace ON events (workspace_id, id);
CREATE INDEX events_undelivered ON events (delivered_at, id);
