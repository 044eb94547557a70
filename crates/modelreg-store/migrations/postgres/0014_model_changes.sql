-- [perf-cold] The log of changed models on PostgreSQL too, so that its lists are answered by
-- the in-memory list index as SQLite's are (list_index.rs, store/indexed.rs).
--
-- The index needs, in a reader's snapshot, every change of the project up to the newest one
-- it sees. A sequence's values are taken in one order and committed in another, so a number
-- drawn from one could be seen after a larger one. A change's number here is therefore the
-- project's generation in model_counts, read after the write's own trigger moved it: every
-- write of a project's models updates that row first (0010, 0011) and holds it until it
-- commits, so the next write of the project reads a larger generation only after this one
-- committed, and a snapshot that sees a change sees every smaller one of its project. A
-- statement of many rows (a batch insert) shares one number. The number is the generation
-- plus one: a project's first insert creates its model_counts row at generation 0, and an
-- index loaded while the project was empty stands at 0 (no change yet), so the first change
-- must come after it.
--
-- The triggers are named zz_… because PostgreSQL fires a table's triggers of the same kind in
-- the order of their names: these come after models_inserted, models_changed and
-- models_deleted, which move the generation. The log keeps each project's newest 10,000
-- generations (list_index.rs's RETAINED_GENERATIONS must equal it), trimmed every 100.

-- The index reads the models of a page, and those changed since it was made, by seq (on
-- SQLite the table's own key).
CREATE UNIQUE INDEX models_seq ON models (seq);

CREATE TABLE model_changes (
    organization_id text   COLLATE "C" NOT NULL,
    project_id      text   COLLATE "C" NOT NULL,
    change          bigint NOT NULL,
    model_seq       bigint NOT NULL,
    PRIMARY KEY (organization_id, project_id, change, model_seq)
);

CREATE FUNCTION model_changes_append(org text, project text, seqs bigint[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    g bigint;
BEGIN
    SELECT generation INTO g FROM model_counts
    WHERE organization_id = org AND project_id = project;
    IF g IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO model_changes (organization_id, project_id, change, model_seq)
    SELECT org, project, g + 1, s FROM unnest(seqs) AS s
    ON CONFLICT DO NOTHING;
    IF g % 100 = 0 THEN
        DELETE FROM model_changes
        WHERE organization_id = org AND project_id = project AND change < g + 1 - 10000;
    END IF;
END $$;

CREATE FUNCTION model_changes_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM model_changes_append(organization_id, project_id, array_agg(seq))
    FROM inserted GROUP BY organization_id, project_id;
    RETURN NULL;
END $$;

CREATE TRIGGER zz_model_changes_inserted AFTER INSERT ON models
REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION model_changes_inserted();

CREATE FUNCTION model_changes_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM model_changes_append(organization_id, project_id, array_agg(seq))
    FROM deleted GROUP BY organization_id, project_id;
    RETURN NULL;
END $$;

CREATE TRIGGER zz_model_changes_deleted AFTER DELETE ON models
REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION model_changes_deleted();

-- A model moved to another project (plain SQL only; modelreg never does it) leaves its old
-- project too: that project's generation moves, so the change has a number of its own.
CREATE FUNCTION model_changes_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM model_changes_append(NEW.organization_id, NEW.project_id, ARRAY[NEW.seq]);
    IF (OLD.organization_id, OLD.project_id) IS DISTINCT FROM (NEW.organization_id, NEW.project_id)
    THEN
        UPDATE model_counts SET generation = generation + 1
        WHERE organization_id = OLD.organization_id AND project_id = OLD.project_id;
        PERFORM model_changes_append(OLD.organization_id, OLD.project_id, ARRAY[OLD.seq]);
    END IF;
    RETURN NULL;
END $$;

-- Every column the index holds (list_index.rs, `IMAGE_COLUMNS`), as SQLite's
-- model_changes_changed lists them. models_changed moves the generation on a change of any of
-- them (its WHEN leaves out only the health check's bookkeeping); a column set to its own
-- value moves nothing and changes no list, and the row logged for it is harmless.
CREATE TRIGGER zz_model_changes_changed AFTER UPDATE OF
    seq, id, organization_id, project_id, resource_uri, name, name_lc, litellm_model, provider,
    description_lc, tags, mode, status, created_at, updated_at, created_by, capabilities,
    max_input_tokens, input_cost_per_token
ON models FOR EACH ROW EXECUTE FUNCTION model_changes_changed();
