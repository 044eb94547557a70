-- Each running server reports, every few seconds, which master keys it holds and which it
-- seals new credentials under. A server seals only under a key every live replica holds, and
-- `keys rotate` re-wraps under a key only when every live replica seals under it, so no
-- replica reads ERROR meanwhile and no record is left under a key about to be retired.
-- Times are the database's clock on PostgreSQL, so replicas' clocks need not agree.
CREATE TABLE replicas (
    replica text        NOT NULL PRIMARY KEY,
    kek_ids text        NOT NULL,
    -- The key it seals new credentials under.
    seal_kek_id text    NOT NULL,
    seen_at timestamptz NOT NULL,
    -- Three heartbeats on: a replica that stops without a word counts as running until then.
    live_until timestamptz NOT NULL
);
