-- API token names are unique within an organization, not across all of them: a 409 on a
-- name taken elsewhere told one tenant another's token names. The (organization_id, name)
-- key replaces the index on the same columns.
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_name_key;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_org_name_key UNIQUE (organization_id, name);
DROP INDEX api_tokens_org;
