-- The background health checker: when each model is next due, how often it failed in a row
-- (for back-off), and the lease a replica holds while it checks it.
ALTER TABLE models ADD COLUMN next_check_at timestamptz;
ALTER TABLE models ADD COLUMN check_failures bigint NOT NULL DEFAULT 0;
ALTER TABLE models ADD COLUMN check_lease_owner text;
ALTER TABLE models ADD COLUMN check_lease_until timestamptz;
CREATE INDEX models_next_check ON models (next_check_at);
