-- Each running server reports, every few seconds, which master keys it holds. `keys rotate`
-- re-wraps under a key only when every live replica holds it, and a server seals new
-- credentials only under a key every live replica holds, so none reads ERROR meanwhile.
CREATE TABLE replicas (
    replica TEXT NOT NULL PRIMARY KEY,
    kek_ids TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    -- Three heartbeats on: a replica that stops without a word counts as running until then.
    live_until TEXT NOT NULL
) STRICT;
