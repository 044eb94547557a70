-- [catalog] A model's prices, token limits, capabilities and deprecation date (each filled
-- from the catalog unless the user gave it), the entry it was filled from and which values are
-- the catalog's (`catalog`, JSON: docs/catalog.md), and the cost maps loaded since the bundled
-- one (`modelreg catalog refresh`).
ALTER TABLE models ADD COLUMN base_model TEXT;
ALTER TABLE models ADD COLUMN input_cost_per_token REAL;
ALTER TABLE models ADD COLUMN output_cost_per_token REAL;
ALTER TABLE models ADD COLUMN cache_read_cost_per_token REAL;
ALTER TABLE models ADD COLUMN cache_write_cost_per_token REAL;
ALTER TABLE models ADD COLUMN capabilities TEXT NOT NULL DEFAULT '[]';
ALTER TABLE models ADD COLUMN deprecation_date TEXT;
ALTER TABLE models ADD COLUMN catalog TEXT NOT NULL DEFAULT '{}';

-- The generation moves with every column a reader sees, the new ones included.
DROP TRIGGER models_changed;
CREATE TRIGGER models_changed AFTER UPDATE OF
    seq, id, organization_id, project_id, resource_uri, name, litellm_model, provider,
    description, tags, api_base, api_version, mode, max_input_tokens, max_output_tokens,
    default_max_tokens, rpm, tpm, default_temperature, timeout, status, status_message,
    created_at, updated_at, created_by, updated_by, credential_fields, credentials_kek_id,
    credentials, last_verified_at, version, base_model, input_cost_per_token,
    output_cost_per_token, cache_read_cost_per_token, cache_write_cost_per_token, capabilities,
    deprecation_date, catalog
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

-- Every cost map loaded by `modelreg catalog refresh`, newest last; the newest is the catalog
-- in force (none: the bundled one). `body` is the file as loaded, gzip-compressed.
CREATE TABLE catalog_snapshots (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    source     TEXT NOT NULL,
    version    TEXT NOT NULL,
    date       TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    loaded_at  TEXT NOT NULL,
    entries    INTEGER NOT NULL,
    body       BLOB NOT NULL
);

-- The list filters and sorts by the catalog's fields (docs/performance.md, "[catalog] List
-- filters on catalog fields"). Most lists are answered by the list index in memory
-- (list_index.rs), which now holds a model's capabilities, max_input_tokens and
-- input_cost_per_token: an update of them is logged for it like the columns of 0012.
DROP TRIGGER model_changes_changed;
CREATE TRIGGER model_changes_changed AFTER UPDATE OF
    seq, id, organization_id, project_id, resource_uri, name, name_lc, litellm_model, provider,
    description_lc, tags, mode, status, created_at, updated_at, created_by, capabilities,
    max_input_tokens, input_cost_per_token
ON models
BEGIN
    INSERT INTO model_changes (organization_id, project_id, model_seq)
    SELECT OLD.organization_id, OLD.project_id, OLD.seq
    UNION
    SELECT NEW.organization_id, NEW.project_id, NEW.seq;
    DELETE FROM model_changes
    WHERE change < (SELECT MAX(change) FROM model_changes) - 100000;
END;

-- A list the index leaves to the database (no search, more than 20,000 matches; or a project
-- too large to hold) walks its sort's index, as the other sort fields do (0011): each carries
-- the facets and the other bound, so the walk refuses rows without reading them. A NULL sorts
-- first here, as the list's order has it on every backend.
CREATE INDEX models_input_cost_per_token ON models (organization_id, project_id, input_cost_per_token, id, status, mode, provider, max_input_tokens);
CREATE INDEX models_max_input_tokens ON models (organization_id, project_id, max_input_tokens, id, status, mode, provider, input_cost_per_token);
