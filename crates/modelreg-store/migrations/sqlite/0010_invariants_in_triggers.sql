-- The database keeps its own invariants, whoever writes: modelreg, an operator with the sqlite3
-- shell, a restore. Per project, model_counts holds the number of models and a generation that
-- moves on every insert, delete and update of a column a list can show; the list caches of every
-- replica key on it. model_tags is derived from the models.tags JSON list.
-- A new column of models that a list shows goes into models_changed's column list (a test in
-- tests/schema.rs compares it with the table).

CREATE TRIGGER models_inserted AFTER INSERT ON models
BEGIN
    INSERT INTO model_counts (organization_id, project_id, models)
    VALUES (NEW.organization_id, NEW.project_id, 1)
    ON CONFLICT (organization_id, project_id)
    DO UPDATE SET models = models + 1, generation = generation + 1;
    INSERT INTO model_tags (model_id, organization_id, project_id, tag)
    SELECT DISTINCT NEW.id, NEW.organization_id, NEW.project_id, value FROM json_each(NEW.tags);
END;

CREATE TRIGGER models_deleted AFTER DELETE ON models
BEGIN
    UPDATE model_counts SET models = models - 1, generation = generation + 1
    WHERE organization_id = OLD.organization_id AND project_id = OLD.project_id;
    DELETE FROM model_tags WHERE model_id = OLD.id;
END;

CREATE TRIGGER models_changed AFTER UPDATE OF
    id, organization_id, project_id, resource_uri, name, litellm_model, provider, description,
    tags, api_base, api_version, mode, max_input_tokens, max_output_tokens, default_max_tokens,
    rpm, tpm, default_temperature, timeout, status, status_message, created_at, updated_at,
    created_by, updated_by, credential_fields, credentials_kek_id, credentials,
    last_verified_at, version
ON models
BEGIN
    UPDATE model_counts SET generation = generation + 1
    WHERE organization_id = NEW.organization_id AND project_id = NEW.project_id;
END;

CREATE TRIGGER models_tags_changed AFTER UPDATE OF tags ON models
BEGIN
    DELETE FROM model_tags WHERE model_id = OLD.id;
    INSERT INTO model_tags (model_id, organization_id, project_id, tag)
    SELECT DISTINCT NEW.id, NEW.organization_id, NEW.project_id, value FROM json_each(NEW.tags);
END;

-- The counts as the rows say, in case a write outside modelreg moved them apart before now.
UPDATE model_counts SET models = (SELECT COUNT(*) FROM models m
    WHERE m.organization_id = model_counts.organization_id
    AND m.project_id = model_counts.project_id);
