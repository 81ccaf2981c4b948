-- Name search's index for SQLite (FTS5 trigrams); PostgreSQL's trigram index on flow_run_names
-- came with 0030. Nothing to do here: the revision keeps both backends' numbers alike.
SELECT 1;
