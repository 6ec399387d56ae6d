-- Hourly and daily request quotas per API key (none = unlimited), beside the per-minute rate.
ALTER TABLE api_keys ADD COLUMN quota_per_hour BIGINT;
ALTER TABLE api_keys ADD COLUMN quota_per_day BIGINT;

-- Per-key usage by UTC hour and endpoint (method and route template): counts, latency sum
-- and a latency histogram (b00..b14 count requests at most 1, 2, 5, 10, 25, 50, 100, 250,
-- 500, 1000, 2500, 5000, 10000, 30000 ms, and slower). Flushed from memory in batches.
CREATE TABLE api_key_usage (
    key_id          TEXT NOT NULL,
    workspace_id    TEXT NOT NULL,
    hour            BIGINT NOT NULL,
    endpoint        TEXT NOT NULL,
    requests        BIGINT NOT NULL,
    client_errors   BIGINT NOT NULL,
    server_errors   BIGINT NOT NULL,
    latency_us_sum  BIGINT NOT NULL,
    b00 BIGINT NOT NULL, b01 BIGINT NOT NULL, b02 BIGINT NOT NULL, b03 BIGINT NOT NULL,
    b04 BIGINT NOT NULL, b05 BIGINT NOT NULL, b06 BIGINT NOT NULL, b07 BIGINT NOT NULL,
    b08 BIGINT NOT NULL, b09 BIGINT NOT NULL, b10 BIGINT NOT NULL, b11 BIGINT NOT NULL,
    b12 BIGINT NOT NULL, b13 BIGINT NOT NULL, b14 BIGINT NOT NULL,
    PRIMARY KEY (key_id, hour, endpoint)
);
CREATE INDEX api_key_usage_workspace ON api_key_usage (workspace_id, key_id, hour);
