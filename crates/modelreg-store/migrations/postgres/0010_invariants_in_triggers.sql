-- The database keeps its own invariants, whoever writes: modelreg, an operator with psql, a
-- restore. Per project, model_counts holds the number of models and a generation that moves on
-- every insert, delete and update of a column a list can show; the list caches of every replica
-- key on it. model_tags is derived from the models.tags JSON list. Inserts and deletes count
-- once per statement (a batch of a thousand models is one update of model_counts); an update
-- bumps the generation when anything but the health-check bookkeeping changed, so a new column
-- counts as visible without changing this.

CREATE FUNCTION models_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO model_counts (organization_id, project_id, models)
    SELECT organization_id, project_id, COUNT(*) FROM inserted GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (organization_id, project_id) DO UPDATE
    SET models = model_counts.models + excluded.models, generation = model_counts.generation + 1;
    INSERT INTO model_tags (model_id, organization_id, project_id, tag)
    SELECT DISTINCT i.id, i.organization_id, i.project_id, t.tag
    FROM inserted i, jsonb_array_elements_text(i.tags::jsonb) AS t(tag);
    RETURN NULL;
END $$;

CREATE TRIGGER models_inserted AFTER INSERT ON models
REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION models_inserted();

CREATE FUNCTION models_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE model_counts c SET models = c.models - d.n, generation = c.generation + 1
    FROM (SELECT organization_id, project_id, COUNT(*) AS n FROM deleted GROUP BY 1, 2) d
    WHERE c.organization_id = d.organization_id AND c.project_id = d.project_id;
    RETURN NULL;
END $$;

CREATE TRIGGER models_deleted AFTER DELETE ON models
REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION models_deleted();

CREATE FUNCTION models_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE model_counts SET generation = generation + 1
    WHERE organization_id = NEW.organization_id AND project_id = NEW.project_id;
    IF NEW.tags IS DISTINCT FROM OLD.tags THEN
        DELETE FROM model_tags WHERE model_id = OLD.id;
        INSERT INTO model_tags (model_id, organization_id, project_id, tag)
        SELECT DISTINCT NEW.id, NEW.organization_id, NEW.project_id, t.tag
        FROM jsonb_array_elements_text(NEW.tags::jsonb) AS t(tag);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER models_changed AFTER UPDATE ON models FOR EACH ROW
WHEN (to_jsonb(OLD) - ARRAY['check_lease_owner', 'check_lease_until', 'next_check_at', 'check_failures']
      IS DISTINCT FROM
      to_jsonb(NEW) - ARRAY['check_lease_owner', 'check_lease_until', 'next_check_at', 'check_failures'])
EXECUTE FUNCTION models_changed();

UPDATE model_counts SET models = (SELECT COUNT(*) FROM models m
    WHERE m.organization_id = model_counts.organization_id
    AND m.project_id = model_counts.project_id);
