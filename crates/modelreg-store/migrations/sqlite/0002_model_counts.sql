-- The number of models per project, kept in the same transaction as every insert and
-- delete, so an unfiltered list answers total_items without counting rows.
CREATE TABLE model_counts (
    organization_id TEXT    NOT NULL,
    project_id      TEXT    NOT NULL,
    models          INTEGER NOT NULL,
    PRIMARY KEY (organization_id, project_id)
) STRICT, WITHOUT ROWID;

INSERT INTO model_counts (organization_id, project_id, models)
SELECT organization_id, project_id, COUNT(*) FROM models GROUP BY organization_id, project_id;
