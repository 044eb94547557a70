-- [perf-cold] SQLite's 0012 adds model_changes, the log its in-memory list index follows. A
-- sequence's values on PostgreSQL are not in commit order, so such a log could not say what a
-- snapshot has seen; PostgreSQL's lists are answered by its own indexes. Nothing changes here.
SELECT 1;
