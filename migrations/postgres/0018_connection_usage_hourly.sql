-- Per-connection calls and failures by UTC hour (unix ms of the hour's start), for the
-- console's usage sparklines; added to by the same batched flush as connection_usage and
-- expired with the API keys' hourly usage.
CREATE TABLE connection_usage_hourly (
    connection_id  TEXT NOT NULL,
    workspace_id   TEXT NOT NULL,
    hour           BIGINT NOT NULL,
    calls          BIGINT NOT NULL,
    errors         BIGINT NOT NULL,
    PRIMARY KEY (connection_id, hour)
);
CREATE INDEX connection_usage_hourly_by_hour ON connection_usage_hourly (hour);
