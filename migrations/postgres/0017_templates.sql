-- Workflow templates (host/src/templates): signed template bundles published under a
-- publisher namespace, public or private to the publishing workspace. `templates` carries
-- the latest installable version's metadata so browsing filters and sorts in SQL; each
-- version keeps its signed bundle and its use count. Reviews reuse `reviews` with
-- item_type 'template'. A workflow made from a template is linked to it (which version,
-- which connection for each slot), written in the same transaction as the workflow.
CREATE TABLE templates (
    id              TEXT PRIMARY KEY,
    publisher_id    TEXT NOT NULL REFERENCES publishers(id),
    workspace_id    TEXT NOT NULL,
    namespace       TEXT NOT NULL,
    name            TEXT NOT NULL,
    private         BIGINT NOT NULL DEFAULT 0,
    featured        BIGINT NOT NULL DEFAULT 0,
    latest_version  TEXT,
    display_name    TEXT NOT NULL DEFAULT '',
    summary         TEXT NOT NULL DEFAULT '',
    category        TEXT NOT NULL DEFAULT '',
    difficulty      TEXT NOT NULL DEFAULT '',
    connectors      TEXT NOT NULL DEFAULT '',
    search_text     TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (namespace, name)
);
CREATE INDEX templates_browse ON templates (category, difficulty);

CREATE TABLE template_versions (
    template_id  TEXT NOT NULL REFERENCES templates(id),
    version      TEXT NOT NULL,
    digest       TEXT NOT NULL,
    document     TEXT NOT NULL,
    bundle       BYTEA NOT NULL,
    signer       TEXT NOT NULL,
    yanked_at    BIGINT,
    uses         BIGINT NOT NULL DEFAULT 0,
    executions   BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (template_id, version)
);

-- Which workspaces used a template (the right to review it), and the version last used.
CREATE TABLE template_uses (
    workspace_id  TEXT NOT NULL,
    template_id   TEXT NOT NULL,
    version       TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, template_id)
);

CREATE TABLE template_workflows (
    workflow_id   TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL,
    template_id   TEXT NOT NULL,
    version       TEXT NOT NULL,
    connections   TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX template_workflows_template ON template_workflows (template_id, version);
