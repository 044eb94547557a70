-- [catalog] A model's prices, token limits, capabilities and deprecation date (each filled
-- from the catalog unless the user gave it), the entry it was filled from and which values are
-- the catalog's (`catalog`, JSON: docs/catalog.md), and the cost maps loaded since the bundled
-- one (`modelreg catalog refresh`). The generation's trigger (0010) covers every column already.
ALTER TABLE models ADD COLUMN base_model text;
ALTER TABLE models ADD COLUMN input_cost_per_token double precision;
ALTER TABLE models ADD COLUMN output_cost_per_token double precision;
ALTER TABLE models ADD COLUMN cache_read_cost_per_token double precision;
ALTER TABLE models ADD COLUMN cache_write_cost_per_token double precision;
ALTER TABLE models ADD COLUMN capabilities text NOT NULL DEFAULT '[]';
ALTER TABLE models ADD COLUMN deprecation_date text;
ALTER TABLE models ADD COLUMN catalog text NOT NULL DEFAULT '{}';

-- Every cost map loaded by `modelreg catalog refresh`, newest last; the newest is the catalog
-- in force (none: the bundled one). `body` is the file as loaded, gzip-compressed.
CREATE TABLE catalog_snapshots (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source     text        NOT NULL,
    version    text        NOT NULL,
    date       text        NOT NULL,
    sha256     text        NOT NULL,
    loaded_at  timestamptz NOT NULL,
    entries    bigint      NOT NULL,
    body       bytea       NOT NULL
);

-- The list filters and sorts by the catalog's fields (docs/performance.md, "[catalog] List
-- filters on catalog fields").
--
-- Sorts by price and by context, as the other sort fields (0011): the tenant, the key, id,
-- and the facets a filter asks of a row, with the other bound beside them. NULLS FIRST is the
-- list's order on every backend (SQLite's own), so an ascending page walks the index forward
-- and a descending one (NULLS LAST) backward.
CREATE INDEX models_input_cost_per_token ON models (organization_id, project_id, input_cost_per_token NULLS FIRST, id) INCLUDE (status, mode, provider, max_input_tokens);
CREATE INDEX models_max_input_tokens ON models (organization_id, project_id, max_input_tokens NULLS FIRST, id) INCLUDE (status, mode, provider, input_cost_per_token);

-- "Has every one of these capabilities" is jsonb containment of the stored list, cast:
-- `CAST(capabilities AS jsonb) @> '["vision","reasoning"]'`, written in list_query.rs exactly
-- as this index's expression. Chosen over a table of (model, capability) rows kept by
-- triggers, as model_tags is: no second copy to keep on every write (PostgreSQL keeps the
-- index), all the capabilities asked for in one probe rather than one join each, and
-- statistics on the expression (the few distinct lists a catalog fills) that let the planner
-- weigh containment against a walk of the sort's index. jsonb_path_ops: containment is the
-- one operator asked of it, and its entries are smaller. The cast also refuses a list that is
-- not JSON, whoever writes it.
CREATE INDEX models_capabilities ON models USING gin ((CAST(capabilities AS jsonb)) jsonb_path_ops);
