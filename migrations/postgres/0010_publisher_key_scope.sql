-- Key ids are chosen by whoever makes the key, so they are unique per publisher only: one
-- publisher registering another's key id first can no longer lock the rightful owner out.
CREATE TABLE publisher_keys_scoped (
    publisher_id  TEXT NOT NULL REFERENCES publishers(id),
    key_id        TEXT NOT NULL,
    public_key    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT,
    PRIMARY KEY (publisher_id, key_id)
);
INSERT INTO publisher_keys_scoped (publisher_id, key_id, public_key, created_at, revoked_at)
    SELECT publisher_id, key_id, public_key, created_at, revoked_at FROM publisher_keys;
DROP TABLE publisher_keys;
ALTER TABLE publisher_keys_scoped RENAME TO publisher_keys;
