-- The audit trail: one row per change, hash-chained per organization. Never updated or
-- deleted by modelreg.
CREATE TABLE audit_events (
    id              uuid             NOT NULL PRIMARY KEY,
    organization_id text COLLATE "C" NOT NULL,
    seq             bigint           NOT NULL,
    at              timestamptz      NOT NULL,
    principal       text             NOT NULL,
    on_behalf_of    text,
    action          text             NOT NULL,
    project_id      text COLLATE "C" NOT NULL,
    model_id        uuid             NOT NULL,
    resource_uri    text COLLATE "C" NOT NULL,
    request_id      text,
    changes         text             NOT NULL,
    prev_hash       text             NOT NULL,
    hash            text             NOT NULL,
    CONSTRAINT audit_events_seq_key UNIQUE (organization_id, seq)
);
CREATE INDEX audit_events_model ON audit_events (organization_id, project_id, model_id, seq);
CREATE INDEX audit_events_uri ON audit_events (organization_id, project_id, resource_uri, seq);
