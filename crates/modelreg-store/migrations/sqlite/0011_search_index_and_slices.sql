-- [perf-cold] Searches and filtered counts without scans.
--
-- 1. A stable integer key. An FTS5 index refers to its rows by an integer, and a rowid that
--    is not declared INTEGER PRIMARY KEY may be renumbered by VACUUM, which would point the
--    index at other rows. So models is rebuilt with `seq INTEGER PRIMARY KEY` (its rowid,
--    stable for the row's life); `id` stays the key every other table and the API use.
-- 2. models_fts: a trigram index of the lower-cased name and description (external content:
--    it stores the trigrams, not a second copy of the text). A search of three characters or
--    more is answered there: a phrase of trigrams matches where the needle is a substring
--    (list_query.rs; a contract test holds it to a substring match computed in Rust). The
--    text and the needles are lower-cased by modelreg, so the index folds nothing itself
--    (case_sensitive 1): its own folding is wider (it takes "ς" for "σ", say).
-- 3. model_slices: per project, the number of models of each combination of status, mode and
--    provider, overall (tag '') and per tag, and a generation that moves whenever a model of
--    that slice is created, changed or deleted. Counts of those filters add up a few slices
--    instead of visiting the models; a kept page of a filtered list stays valid while the
--    slices its filters select have not moved (list_query.rs).
-- The triggers of 0010 go with the old table; they are made again here, with the upkeep of the
-- index and the slices added. A new column of models that a list shows goes into
-- models_changed's column list (tests/schema.rs compares it with the table).

CREATE TABLE models_rebuilt (
    seq                 INTEGER PRIMARY KEY,
    id                  TEXT    NOT NULL UNIQUE,
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
    next_check_at       TEXT,
    check_failures      INTEGER NOT NULL DEFAULT 0,
    check_lease_owner   TEXT,
    check_lease_until   TEXT,
    CONSTRAINT models_resource_uri_key UNIQUE (organization_id, project_id, resource_uri)
) STRICT;

INSERT INTO models_rebuilt (
    id, organization_id, project_id, resource_uri, name, name_lc, litellm_model, provider,
    description, description_lc, tags, api_base, api_version, mode, max_input_tokens,
    max_output_tokens, default_max_tokens, rpm, tpm, default_temperature, timeout, status,
    status_message, created_at, updated_at, created_by, updated_by, credential_fields,
    credentials_kek_id, credentials, last_verified_at, version, next_check_at, check_failures,
    check_lease_owner, check_lease_until)
SELECT
    id, organization_id, project_id, resource_uri, name, name_lc, litellm_model, provider,
    description, description_lc, tags, api_base, api_version, mode, max_input_tokens,
    max_output_tokens, default_max_tokens, rpm, tpm, default_temperature, timeout, status,
    status_message, created_at, updated_at, created_by, updated_by, credential_fields,
    credentials_kek_id, credentials, last_verified_at, version, next_check_at, check_failures,
    check_lease_owner, check_lease_until
FROM models ORDER BY created_at, id;

-- model_tags refers to models; it is derived, so it is made again rather than carried over.
DROP TABLE model_tags;
DROP TABLE models;
ALTER TABLE models_rebuilt RENAME TO models;

-- One index per sort field, each ending in id, and then the facets a filter asks of a row
-- (status, mode, provider): a sorted page walks its index and skips the rows its filters
-- refuse without reading them from the table. Reading each visited row from the table was
-- most of a filtered list's time (perf: 27% of the server's samples in the table's b-tree and
-- in pread) when the file was larger than SQLite's page cache.
CREATE INDEX models_created_at ON models (organization_id, project_id, created_at, id, status, mode, provider);
CREATE INDEX models_updated_at ON models (organization_id, project_id, updated_at, id, status, mode, provider);
CREATE INDEX models_name ON models (organization_id, project_id, name, id, status, mode, provider);
CREATE INDEX models_litellm_model ON models (organization_id, project_id, litellm_model, id, status, mode, provider);
CREATE INDEX models_provider ON models (organization_id, project_id, provider, id, status, mode);
CREATE INDEX models_status ON models (organization_id, project_id, status, id, mode, provider);
CREATE INDEX models_mode ON models (organization_id, project_id, mode, id, status, provider);
CREATE INDEX models_created_by ON models (organization_id, project_id, created_by, id);
CREATE INDEX models_kek ON models (credentials_kek_id);
CREATE INDEX models_next_check ON models (next_check_at);
-- The facets together (0007 had status and mode): a filter that names all three reads its
-- rows directly, and the statistics (PRAGMA optimize, sqlite.rs) tell the planner how few.
CREATE INDEX models_facets ON models (organization_id, project_id, status, mode, provider);
-- A search's candidates from models_fts are checked for the tenant, and ordered by creation,
-- in this index alone: its rows are small and dense, where the table's hold the credentials
-- (a candidate checked through the table cost about five times as much).
CREATE INDEX models_seq_tenant ON models (seq, organization_id, project_id, created_at, id);

CREATE TABLE model_tags (
    model_id        TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL,
    project_id      TEXT NOT NULL,
    tag             TEXT NOT NULL,
    PRIMARY KEY (model_id, tag)
) STRICT, WITHOUT ROWID;
CREATE INDEX model_tags_tag ON model_tags (organization_id, project_id, tag, model_id);
INSERT INTO model_tags (model_id, organization_id, project_id, tag)
SELECT DISTINCT m.id, m.organization_id, m.project_id, t.value FROM models m, json_each(m.tags) t;

CREATE VIRTUAL TABLE models_fts USING fts5 (
    name_lc, description_lc, content = 'models', content_rowid = 'seq',
    tokenize = 'trigram case_sensitive 1'
);
INSERT INTO models_fts (models_fts) VALUES ('rebuild');

CREATE TABLE model_slices (
    organization_id TEXT    NOT NULL,
    project_id      TEXT    NOT NULL,
    tag             TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    mode            TEXT    NOT NULL,
    provider        TEXT    NOT NULL,
    models          INTEGER NOT NULL,
    generation      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (organization_id, project_id, tag, status, mode, provider)
) STRICT, WITHOUT ROWID;
INSERT INTO model_slices (organization_id, project_id, tag, status, mode, provider, models)
SELECT organization_id, project_id, tag, status, mode, provider, COUNT(*) FROM (
    SELECT organization_id, project_id, '' AS tag, status, mode, provider FROM models
    UNION ALL
    SELECT organization_id, project_id, tag, status, mode, provider FROM (
        SELECT DISTINCT m.id, m.organization_id, m.project_id, t.value AS tag, m.status, m.mode,
               m.provider
        FROM models m, json_each(m.tags) t
    )
) GROUP BY organization_id, project_id, tag, status, mode, provider;

CREATE TRIGGER models_inserted AFTER INSERT ON models
BEGIN
    INSERT INTO model_counts (organization_id, project_id, models)
    VALUES (NEW.organization_id, NEW.project_id, 1)
    ON CONFLICT (organization_id, project_id)
    DO UPDATE SET models = models + 1, generation = generation + 1;
    INSERT INTO model_tags (model_id, organization_id, project_id, tag)
    SELECT DISTINCT NEW.id, NEW.organization_id, NEW.project_id, value FROM json_each(NEW.tags);
    INSERT INTO model_slices (organization_id, project_id, tag, status, mode, provider, models,
                              generation)
    SELECT NEW.organization_id, NEW.project_id, t.tag, NEW.status, NEW.mode, NEW.provider, 1, 1
    FROM (SELECT '' AS tag UNION SELECT value FROM json_each(NEW.tags)) t WHERE true
    ON CONFLICT (organization_id, project_id, tag, status, mode, provider)
    DO UPDATE SET models = models + 1, generation = generation + 1;
    INSERT INTO models_fts (rowid, name_lc, description_lc)
    VALUES (NEW.seq, NEW.name_lc, NEW.description_lc);
END;

CREATE TRIGGER models_deleted AFTER DELETE ON models
BEGIN
    UPDATE model_counts SET models = models - 1, generation = generation + 1
    WHERE organization_id = OLD.organization_id AND project_id = OLD.project_id;
    DELETE FROM model_tags WHERE model_id = OLD.id;
    UPDATE model_slices SET models = models - 1, generation = generation + 1
    WHERE organization_id = OLD.organization_id AND project_id = OLD.project_id
      AND status = OLD.status AND mode = OLD.mode AND provider = OLD.provider
      AND tag IN (SELECT '' UNION SELECT value FROM json_each(OLD.tags));
    INSERT INTO models_fts (models_fts, rowid, name_lc, description_lc)
    VALUES ('delete', OLD.seq, OLD.name_lc, OLD.description_lc);
END;

CREATE TRIGGER models_changed AFTER UPDATE OF
    seq, id, organization_id, project_id, resource_uri, name, litellm_model, provider,
    description, tags, api_base, api_version, mode, max_input_tokens, max_output_tokens,
    default_max_tokens, rpm, tpm, default_temperature, timeout, status, status_message,
    created_at, updated_at, created_by, updated_by, credential_fields, credentials_kek_id,
    credentials, last_verified_at, version
ON models
BEGIN
    UPDATE model_counts SET generation = generation + 1
    WHERE organization_id = NEW.organization_id AND project_id = NEW.project_id;
    UPDATE model_slices SET models = models - 1, generation = generation + 1
    WHERE organization_id = OLD.organization_id AND project_id = OLD.project_id
      AND status = OLD.status AND mode = OLD.mode AND provider = OLD.provider
      AND tag IN (SELECT '' UNION SELECT value FROM json_each(OLD.tags));
    INSERT INTO model_slices (organization_id, project_id, tag, status, mode, provider, models,
                              generation)
    SELECT NEW.organization_id, NEW.project_id, t.tag, NEW.status, NEW.mode, NEW.provider, 1, 1
    FROM (SELECT '' AS tag UNION SELECT value FROM json_each(NEW.tags)) t WHERE true
    ON CONFLICT (organization_id, project_id, tag, status, mode, provider)
    DO UPDATE SET models = models + 1, generation = generation + 1;
END;

CREATE TRIGGER models_tags_changed AFTER UPDATE OF tags ON models
BEGIN
    DELETE FROM model_tags WHERE model_id = OLD.id;
    INSERT INTO model_tags (model_id, organization_id, project_id, tag)
    SELECT DISTINCT NEW.id, NEW.organization_id, NEW.project_id, value FROM json_each(NEW.tags);
END;

CREATE TRIGGER models_text_changed AFTER UPDATE OF seq, name_lc, description_lc ON models
BEGIN
    INSERT INTO models_fts (models_fts, rowid, name_lc, description_lc)
    VALUES ('delete', OLD.seq, OLD.name_lc, OLD.description_lc);
    INSERT INTO models_fts (rowid, name_lc, description_lc)
    VALUES (NEW.seq, NEW.name_lc, NEW.description_lc);
END;
