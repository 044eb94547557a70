-- [perf-cold] A log of which models changed, for the in-memory list index (list_index.rs).
--
-- Every insert, update and delete of a model appends the model's seq to model_changes, in
-- commit order: SQLite has one writer, so a later change always has a larger number. A
-- server that keeps a project's models in memory for its lists knows which change it has
-- seen last; in a reader's snapshot it finds the project's changes after that one, reads
-- those models again (a seq with no row is a delete), and so answers exactly as of the
-- snapshot. Triggers keep the log whoever writes (this server, another process, a restored
-- file). The log keeps the last 100,000 changes of the database: an index further behind
-- than that loads its project again (list_index.rs's RETAINED must equal it).
--
-- PostgreSQL has no such log (its 0012 is empty): a sequence's values there are not in
-- commit order, and its lists are answered by its own indexes (pg_trgm, the sort indexes).

CREATE TABLE model_changes (
    change          INTEGER PRIMARY KEY,
    organization_id TEXT    NOT NULL,
    project_id      TEXT    NOT NULL,
    model_seq       INTEGER NOT NULL
) STRICT;
CREATE INDEX model_changes_project ON model_changes (organization_id, project_id, change);

CREATE TRIGGER model_changes_inserted AFTER INSERT ON models
BEGIN
    INSERT INTO model_changes (organization_id, project_id, model_seq)
    VALUES (NEW.organization_id, NEW.project_id, NEW.seq);
    DELETE FROM model_changes
    WHERE change < (SELECT MAX(change) FROM model_changes) - 100000;
END;

CREATE TRIGGER model_changes_deleted AFTER DELETE ON models
BEGIN
    INSERT INTO model_changes (organization_id, project_id, model_seq)
    VALUES (OLD.organization_id, OLD.project_id, OLD.seq);
    DELETE FROM model_changes
    WHERE change < (SELECT MAX(change) FROM model_changes) - 100000;
END;

-- Every column the index holds (list_index.rs, `IMAGE_COLUMNS`); a change of another column
-- (a health check's lease or schedule, a credential) leaves every list as it was.
CREATE TRIGGER model_changes_changed AFTER UPDATE OF
    seq, id, organization_id, project_id, resource_uri, name, name_lc, litellm_model, provider,
    description_lc, tags, mode, status, created_at, updated_at, created_by
ON models
BEGIN
    INSERT INTO model_changes (organization_id, project_id, model_seq)
    SELECT OLD.organization_id, OLD.project_id, OLD.seq
    UNION
    SELECT NEW.organization_id, NEW.project_id, NEW.seq;
    DELETE FROM model_changes
    WHERE change < (SELECT MAX(change) FROM model_changes) - 100000;
END;
