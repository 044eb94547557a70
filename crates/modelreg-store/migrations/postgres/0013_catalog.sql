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
