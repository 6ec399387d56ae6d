-- An authorization flow is bound to the browser that opened Nexum's authorization link:
-- the provider URL (without its state) is kept for that first visit, which sets a cookie
-- whose SHA-256 is stored here; the callback must carry that cookie.
ALTER TABLE oauth_flows ADD COLUMN authorize_url TEXT;
ALTER TABLE oauth_flows ADD COLUMN browser_hash TEXT;
