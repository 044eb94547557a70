-- Model configurations. Timestamps are fixed-width RFC 3339 UTC text (see
-- modelreg_core::timestamp), so text order is time order. A null provider or mode is stored
-- as '' so that it sorts first in ascending order, the same on every backend.
CREATE TABLE models (
    id                  TEXT    NOT NULL PRIMARY KEY,
    organization_id     TEXT    NOT NULL,
    project_id          TEXT    NOT NULL,
    resource_uri        TEXT    NOT NULL,
    name                TEXT    NOT NULL,
    name_lc             TEXT    NOT NULL,
    litellm_model       TEXT    NOT NULL,
    provider            TEXT    NOT NULL DEFAULT '',
    description         TEXT,
    description_lc      TEXT    NOT NULL DEFAULT '',
    tags                TEXT    NOT NULL DEFAULT '[]',
    api_base            TEXT,
    api_version         TEXT,
    mode                TEXT    NOT NULL DEFAULT '',
    max_input_tokens    INTEGER,
    max_output_tokens   INTEGER,
    default_max_tokens  INTEGER,
    rpm                 INTEGER,
    tpm                 INTEGER,
    default_temperature REAL,
    timeout             REAL,
    status              TEXT    NOT NULL,
    status_message      TEXT,
    created_at          TEXT    NOT NULL,
    updated_at          TEXT    NOT NULL,
    created_by          TEXT    NOT NULL,
    updated_by          TEXT    NOT NULL,
    credential_fields   TEXT    NOT NULL DEFAULT '[]',
    credentials_kek_id  TEXT    NOT NULL,
    credentials         BLOB    NOT NULL,
    last_verified_at    TEXT,
    version             INTEGER NOT NULL DEFAULT 1,
    CONSTRAINT models_resource_uri_key UNIQUE (organization_id, project_id, resource_uri)
) STRICT;

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

-- Tags as rows, for the "has every listed tag" filter.
CREATE TABLE model_tags (
    model_id        TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL,
    project_id      TEXT NOT NULL,
    tag             TEXT NOT NULL,
    PRIMARY KEY (model_id, tag)
) STRICT, WITHOUT ROWID;
CREATE INDEX model_tags_tag ON model_tags (organization_id, project_id, tag, model_id);

-- API tokens: only the SHA-256 of the secret is kept.
CREATE TABLE api_tokens (
    id              TEXT NOT NULL PRIMARY KEY,
    name            TEXT NOT NULL,
    token_hash      TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    project_id      TEXT NOT NULL,
    role            TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    revoked_at      TEXT,
    CONSTRAINT api_tokens_name_key UNIQUE (name),
    CONSTRAINT api_tokens_hash_key UNIQUE (token_hash)
) STRICT;
