-- Marketplace: signed installs with accepted permissions and history, the registry
-- (publishers, keys, packages, versions, bundles), installs and reviews.

ALTER TABLE installations ADD COLUMN signer TEXT NOT NULL DEFAULT 'unsigned';
ALTER TABLE installations ADD COLUMN permissions TEXT NOT NULL DEFAULT '{}';
ALTER TABLE installations ADD COLUMN source TEXT NOT NULL DEFAULT 'upload';

CREATE TABLE installation_history (
    id               TEXT PRIMARY KEY,
    installation_id  TEXT NOT NULL,
    workspace_id     TEXT NOT NULL,
    version          TEXT NOT NULL,
    digest           TEXT NOT NULL,
    manifest         TEXT NOT NULL,
    signer           TEXT NOT NULL,
    permissions      TEXT NOT NULL,
    source           TEXT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX installation_history_installation ON installation_history (workspace_id, installation_id, id);

CREATE TABLE publishers (
    id            TEXT PRIMARY KEY,
    namespace     TEXT NOT NULL UNIQUE,
    workspace_id  TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE publisher_keys (
    key_id        TEXT PRIMARY KEY,
    publisher_id  TEXT NOT NULL REFERENCES publishers(id),
    public_key    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);

CREATE TABLE packages (
    id            TEXT PRIMARY KEY,
    publisher_id  TEXT NOT NULL REFERENCES publishers(id),
    namespace     TEXT NOT NULL,
    name          TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    description   TEXT NOT NULL,
    category      TEXT NOT NULL,
    featured      BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    UNIQUE (namespace, name)
);

CREATE TABLE bundles (
    digest      TEXT PRIMARY KEY,
    bytes       BLOB NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE package_versions (
    package_id   TEXT NOT NULL REFERENCES packages(id),
    version      TEXT NOT NULL,
    digest       TEXT NOT NULL REFERENCES bundles(digest),
    manifest     TEXT NOT NULL,
    permissions  TEXT NOT NULL,
    signer       TEXT NOT NULL,
    yanked_at    BIGINT,
    installs     BIGINT NOT NULL DEFAULT 0,
    executions   BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (package_id, version)
);

CREATE TABLE marketplace_installs (
    workspace_id  TEXT NOT NULL,
    package_id    TEXT NOT NULL,
    version       TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, package_id)
);

-- Reviews of any marketplace item (connectors now, workflow templates later).
CREATE TABLE reviews (
    id            TEXT PRIMARY KEY,
    item_type     TEXT NOT NULL,
    item_id       TEXT NOT NULL,
    workspace_id  TEXT NOT NULL,
    author        TEXT NOT NULL,
    stars         BIGINT NOT NULL CHECK (stars BETWEEN 1 AND 5),
    body          TEXT NOT NULL DEFAULT '',
    version       TEXT NOT NULL,
    reply         TEXT,
    replied_at    BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (item_type, item_id, author)
);
