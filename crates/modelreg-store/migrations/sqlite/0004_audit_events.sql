-- The audit trail: one row per change, hash-chained per organization. Never updated or
-- deleted by modelreg.
CREATE TABLE audit_events (
    id              TEXT    NOT NULL PRIMARY KEY,
    organization_id TEXT    NOT NULL,
    seq             INTEGER NOT NULL,
    at              TEXT    NOT NULL,
    principal       TEXT    NOT NULL,
    on_behalf_of    TEXT,
    action          TEXT    NOT NULL,
    project_id      TEXT    NOT NULL,
    model_id        TEXT    NOT NULL,
    resource_uri    TEXT    NOT NULL,
    request_id      TEXT,
    changes         TEXT    NOT NULL,
    prev_hash       TEXT    NOT NULL,
    hash            TEXT    NOT NULL,
    CONSTRAINT audit_events_seq_key UNIQUE (organization_id, seq)
) STRICT;
CREATE INDEX audit_events_model ON audit_events (organization_id, project_id, model_id, seq);
CREATE INDEX audit_events_uri ON audit_events (organization_id, project_id, resource_uri, seq);
