-- A project's generation: bumped in the same transaction as every write that can change one of
-- its lists (create, update, delete, verification). A replica may reuse the count of a filtered
-- list while the generation it was counted at is still the current one (list_query.rs).
ALTER TABLE model_counts ADD COLUMN generation bigint NOT NULL DEFAULT 0;
