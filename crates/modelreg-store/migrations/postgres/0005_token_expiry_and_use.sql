-- API tokens can expire, and record when they were last used (written in batches).
ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz;
ALTER TABLE api_tokens ADD COLUMN last_used_at timestamptz;
CREATE INDEX api_tokens_org ON api_tokens (organization_id, name);
