-- An operator's OAuth app is shared by every workspace, so it is bound to what it was
-- registered for: the origin of the token endpoint its secret may go to, and the publisher
-- key that must have signed the connector using it. Apps registered before this have
-- neither and are not used until the operator registers them again.
ALTER TABLE oauth_apps ADD COLUMN token_origin TEXT;
ALTER TABLE oauth_apps ADD COLUMN signer TEXT;
