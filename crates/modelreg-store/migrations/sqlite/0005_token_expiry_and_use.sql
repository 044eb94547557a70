-- API tokens can expire, and record when they were last used (written in batches).
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
ALTER TABLE api_tokens ADD COLUMN last_used_at TEXT;
CREATE INDEX api_tokens_org ON api_tokens (organization_id, name);
