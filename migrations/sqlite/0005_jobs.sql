-- The durable job queue (host/src/jobs/queue.rs): every piece of background work that must
-- not be lost (webhook deliveries, workflow executions). A job is claimed by setting a lease
-- token and a lease deadline; a job whose lease ran out (its node died) is claimable again.
-- `dedupe_key` makes enqueueing idempotent per queue.
CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    queue        TEXT NOT NULL,
    dedupe_key   TEXT,
    payload      TEXT NOT NULL,
    run_at       BIGINT NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    lease_token  TEXT,
    lease_until  BIGINT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    UNIQUE (queue, dedupe_key)
);
CREATE INDEX jobs_due ON jobs (queue, run_at);
