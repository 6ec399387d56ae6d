-- Webhook endpoint settings: an enforced per-endpoint rate limit (deliveries per second,
-- NULL for none) and where the endpoint came from (`api`, or `hook` for a REST-hook
-- subscription made by an automation platform). Custom header values and the previous
-- signing secret during a rotation live with the signing secret, sealed in `secrets`.
ALTER TABLE webhook_endpoints ADD COLUMN rate_limit_per_sec BIGINT;
ALTER TABLE webhook_endpoints ADD COLUMN source TEXT NOT NULL DEFAULT 'api';
ALTER TABLE webhook_endpoints ADD COLUMN header_names TEXT NOT NULL DEFAULT '';
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (workspace_id, endpoint_id, created_at);
