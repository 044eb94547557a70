-- API token names are unique within an organization, not across all of them: a 409 on a
-- name taken elsewhere told one tenant another's token names. SQLite cannot drop a
-- constraint, so the table is rebuilt; the (organization_id, name) key replaces the index.
CREATE TABLE api_tokens_new (
    id              TEXT NOT NULL PRIMARY KEY,
    name            TEXT NOT NULL,
    token_hash      TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    project_id      TEXT NOT NULL,
    role            TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    revoked_at      TEXT,
    expires_at      TEXT,
    last_used_at    TEXT,
    CONSTRAINT api_tokens_org_name_key UNIQUE (organization_id, name),
    CONSTRAINT api_tokens_hash_key UNIQUE (token_hash)
) STRICT;
INSERT INTO api_tokens_new
    (id, name, token_hash, organization_id, project_id, role, created_at, revoked_at,
     expires_at, last_used_at)
SELECT id, name, token_hash, organization_id, project_id, role, created_at, revoked_at,
       expires_at, last_used_at
FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_new RENAME TO api_tokens;
