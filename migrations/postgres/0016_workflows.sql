-- Workflows (host/src/workflows). A workflow belongs to a workspace; every save of its
-- definition is a new immutable version, and an execution runs exactly one version.
-- Executions run on the durable queue (queue `workflow.run`); each finished step is
-- journaled in `workflow_step_runs`, so a resumed execution never runs a completed step
-- again. A workflow's trigger (incoming webhook or schedule) has a stable `trg_…` id; a
-- webhook trigger's signing secrets are sealed in `secrets` (owner = the trigger id).
CREATE TABLE workflows (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id),
    name          TEXT NOT NULL,
    description   TEXT NOT NULL,
    enabled       BIGINT NOT NULL,
    version       BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX workflows_workspace ON workflows (workspace_id, id);

CREATE TABLE workflow_versions (
    workflow_id   TEXT NOT NULL,
    version       BIGINT NOT NULL,
    definition    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (workflow_id, version)
);

CREATE TABLE workflow_executions (
    id                TEXT PRIMARY KEY,
    workspace_id      TEXT NOT NULL,
    workflow_id       TEXT NOT NULL,
    version           BIGINT NOT NULL,
    trigger_kind      TEXT NOT NULL,
    status            TEXT NOT NULL,
    input             TEXT NOT NULL,
    output            TEXT,
    error             TEXT,
    failed_step       TEXT,
    cancel_requested  BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    started_at        BIGINT,
    finished_at       BIGINT
);
CREATE INDEX workflow_executions_workflow ON workflow_executions (workspace_id, workflow_id, id);

CREATE TABLE workflow_step_runs (
    execution_id     TEXT NOT NULL,
    step             TEXT NOT NULL,
    position         BIGINT NOT NULL,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    connector        TEXT,
    output           TEXT,
    error            TEXT,
    next_step        TEXT,
    trace            TEXT,
    wake_at          BIGINT,
    started_at       BIGINT NOT NULL,
    finished_at      BIGINT,
    PRIMARY KEY (execution_id, step)
);

CREATE TABLE workflow_triggers (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL,
    workflow_id   TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL,
    scheme        TEXT,
    next_run_at   BIGINT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX workflow_triggers_due ON workflow_triggers (kind, next_run_at);

CREATE TABLE trigger_deliveries (
    trigger_id    TEXT NOT NULL,
    delivery_id   TEXT NOT NULL,
    execution_id  TEXT NOT NULL,
    received_at   BIGINT NOT NULL,
    PRIMARY KEY (trigger_id, delivery_id)
);

CREATE TABLE trigger_failures (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL,
    trigger_id    TEXT NOT NULL,
    reason        TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX trigger_failures_trigger ON trigger_failures (workspace_id, trigger_id, id);
