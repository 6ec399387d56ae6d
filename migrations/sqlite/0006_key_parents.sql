-- The key that minted each API key, so revoking a key revokes every key it minted (and
-- theirs). Keys made by bootstrap or the CLI have none.
ALTER TABLE api_keys ADD COLUMN parent_id TEXT;
CREATE INDEX api_keys_parent ON api_keys (parent_id);
