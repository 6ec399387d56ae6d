-- A bundle's digest covers its content, not its signature: keep each published version's own
-- signature so two publishers of identical content never share (or swap) signatures.
ALTER TABLE package_versions ADD COLUMN signature TEXT NOT NULL DEFAULT '';
