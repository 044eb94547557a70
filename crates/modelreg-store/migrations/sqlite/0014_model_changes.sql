-- [perf-cold] PostgreSQL's 0014 adds model_changes, the log SQLite has had since 0012, so
-- that its lists are answered by the in-memory list index too. Nothing changes here.
SELECT 1;
