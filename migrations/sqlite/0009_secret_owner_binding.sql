-- Version 2 of a secret's associated data also names the row that owns it (a connection or
-- an OAuth app), so a ciphertext whose owner_id is changed in the database no longer opens.
-- Rows written before are version 1 until the server re-seals them at start.
ALTER TABLE secrets ADD COLUMN aad_version BIGINT NOT NULL DEFAULT 1;
