-- Outgoing webhooks (host/src/webhooks). An endpoint belongs to a workspace; its `whsec_`
-- signing secret is sealed in `secrets` (owner = the endpoint id). Each event fanned out from
-- the outbox becomes one message; each (message, endpoint) pair is delivered by a job on the
-- durable queue, and every attempt is logged.
CREATE TABLE webhook_endpoints (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces(id),
    url              TEXT NOT NULL,
    description      TEXT NOT NULL,
    event_types      TEXT NOT NULL,
    disabled_at      BIGINT,
    disabled_reason  TEXT,
    failing_since    BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_workspace ON webhook_endpoints (workspace_id);

CREATE TABLE webhook_messages (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL,
    event_id      TEXT NOT NULL UNIQUE,
    event_type    TEXT NOT NULL,
    payload       TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX webhook_messages_workspace ON webhook_messages (workspace_id, id);

CREATE TABLE webhook_attempts (
    id                TEXT PRIMARY KEY,
    workspace_id      TEXT NOT NULL,
    message_id        TEXT NOT NULL,
    endpoint_id       TEXT NOT NULL,
    attempt           BIGINT NOT NULL,
    status_code       BIGINT,
    latency_ms        BIGINT NOT NULL,
    response_excerpt  TEXT NOT NULL,
    error             TEXT,
    next_attempt_at   BIGINT,
    created_at        BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_message ON webhook_attempts (workspace_id, message_id, endpoint_id, id);
