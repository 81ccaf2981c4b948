-- Run search at a million runs (bench/bench_search.py): every filter the UI and the CLI use,
-- with limit 200 in the UI's sorts, and its count, read an index range rather than the table.

-- A tag criterion is `run_id IN (runs with the tag)` (api/queries/filtering.py, tags_all):
-- with the run id in the key the tag's runs are one index range, never a table read.
DROP INDEX flow_run_tags_tag;
CREATE INDEX flow_run_tags_tag ON flow_run_tags (tag, run_id);

-- The sorts EXPECTED_START_TIME_DESC and START_TIME_DESC (newest first, NULLs first, ties by
-- id descending) are a backward walk of these; with a filter and a limit the walk stops after
-- the page. The second also serves the start_time range filter, which compares the same
-- expression (a run that has not started is placed at its expected start time).
DROP INDEX flow_runs_expected_start;
CREATE INDEX flow_runs_expected_start ON flow_runs (expected_start_time, id);
CREATE INDEX flow_runs_started ON flow_runs ((COALESCE(start_time, expected_start_time)), id);
-- NAME_ASC (ties by id descending).
CREATE INDEX flow_runs_name ON flow_runs (name, id DESC);

-- name like_ is a case-insensitive substring match (lower(name) LIKE '%...%'), which no btree
-- serves: a trigram index does. pg_trgm ships with PostgreSQL (contrib) and is a trusted
-- extension, so a database owner may create it; where it cannot be created the index is left
-- out and like_ reads every run, as before (the answer is the same either way).
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE INDEX flow_runs_name_trigrams ON flow_runs USING gin (lower(name) gin_trgm_ops);
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'runlog: no trigram index on flow run names (%)', SQLERRM;
END
$$;

-- The work pool and queue filters are `work_queue_id IN (the matching queues)`: the few queues'
-- runs are one index range each. SQLite reads them from flow_runs_queue_scheduled (partial, on
-- work_queue_id IS NOT NULL, which IN implies); PostgreSQL's planner does not prove that
-- through the semi-join, so it gets an index of its own.
CREATE INDEX flow_runs_work_queue ON flow_runs (work_queue_id, id);
