-- A claimed Idempotency-Key whose request died with its process (SIGKILL, crash) is held
-- only until its lease ends; a retry after that runs the request. Older rows have none and
-- count as expired.
ALTER TABLE idempotency_keys ADD COLUMN lease_until BIGINT;
