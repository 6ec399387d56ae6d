-- Non-public address ranges the operator granted one workspace's connectors (on top of
-- NEXUM_ALLOW_RANGES, which every workspace gets): comma-separated CIDRs.
CREATE TABLE workspace_ranges (
    workspace_id  TEXT PRIMARY KEY REFERENCES workspaces(id),
    ranges        TEXT NOT NULL,
    updated_at    BIGINT NOT NULL
);
