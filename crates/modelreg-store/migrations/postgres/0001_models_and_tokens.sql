-- The PostgreSQL schema. It holds the same tables, columns and indexes as
-- migrations/sqlite, with native types (uuid, timestamptz, bytea). Every text column
-- that is sorted or compared uses COLLATE "C", so ordering is by bytes, as on SQLite.
-- A null provider or mode is stored as '', so it sorts first in ascending order.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE models (
    id                  uuid             NOT NULL PRIMARY KEY,
    organization_id     text COLLATE "C" NOT NULL,
    project_id          text COLLATE "C" NOT NULL,
    resource_uri        text COLLATE "C" NOT NULL,
    name                text COLLATE "C" NOT NULL,
    name_lc             text COLLATE "C" NOT NULL,
    litellm_model       text COLLATE "C" NOT NULL,
    provider            text COLLATE "C" NOT NULL DEFAULT '',
    description         text,
    description_lc      text COLLATE "C" NOT NULL DEFAULT '',
    tags                text             NOT NULL DEFAULT '[]',
    api_base            text,
    api_version         text,
    mode                text COLLATE "C" NOT NULL DEFAULT '',
    max_input_tokens    bigint,
    max_output_tokens   bigint,
    default_max_tokens  bigint,
    rpm                 bigint,
    tpm                 bigint,
    default_temperature double precision,
    timeout             double precision,
    status              text COLLATE "C" NOT NULL,
    status_message      text,
    created_at          timestamptz      NOT NULL,
    updated_at          timestamptz      NOT NULL,
    created_by          text COLLATE "C" NOT NULL,
    updated_by          text             NOT NULL,
    credential_fields   text             NOT NULL DEFAULT '[]',
    credentials_kek_id  text             NOT NULL,
    credentials         bytea            NOT NULL,
    last_verified_at    timestamptz,
    version             bigint           NOT NULL DEFAULT 1,
    CONSTRAINT models_resource_uri_key UNIQUE (organization_id, project_id, resource_uri)
);

-- One index per sort field, each ending in id, so that a sorted page is an index walk.
CREATE INDEX models_created_at ON models (organization_id, project_id, created_at, id);
CREATE INDEX models_updated_at ON models (organization_id, project_id, updated_at, id);
CREATE INDEX models_name ON models (organization_id, project_id, name, id);
CREATE INDEX models_litellm_model ON models (organization_id, project_id, litellm_model, id);
CREATE INDEX models_provider ON models (organization_id, project_id, provider, id);
CREATE INDEX models_status ON models (organization_id, project_id, status, id);
CREATE INDEX models_mode ON models (organization_id, project_id, mode, id);
CREATE INDEX models_created_by ON models (organization_id, project_id, created_by, id);
CREATE INDEX models_kek ON models (credentials_kek_id);
-- Substring search (LIKE '%needle%') without a table scan.
CREATE INDEX models_name_trgm ON models USING gin (name_lc gin_trgm_ops);
CREATE INDEX models_description_trgm ON models USING gin (description_lc gin_trgm_ops);

-- Tags as rows, for the "has every listed tag" filter.
CREATE TABLE model_tags (
    model_id        uuid             NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    organization_id text COLLATE "C" NOT NULL,
    project_id      text COLLATE "C" NOT NULL,
    tag             text COLLATE "C" NOT NULL,
    PRIMARY KEY (model_id, tag)
);
CREATE INDEX model_tags_tag ON model_tags (organization_id, project_id, tag, model_id);

-- API tokens: only the SHA-256 of the secret is kept.
CREATE TABLE api_tokens (
    id              uuid        NOT NULL PRIMARY KEY,
    name            text        NOT NULL,
    token_hash      text        NOT NULL,
    organization_id text        NOT NULL,
    project_id      text        NOT NULL,
    role            text        NOT NULL,
    created_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    CONSTRAINT api_tokens_name_key UNIQUE (name),
    CONSTRAINT api_tokens_hash_key UNIQUE (token_hash)
);
