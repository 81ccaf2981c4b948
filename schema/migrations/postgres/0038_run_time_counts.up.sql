-- Counts of a time range, or of a flow and state within one, from an index alone. PostgreSQL
-- counts from an index without reading each run's heap page (an index-only scan) when the
-- index holds every column the query reads and the visibility map says the page holds only
-- rows every snapshot sees. Neither held: at 1,000,000 runs a day's count read each of its
-- 33,000 runs' pages (0.3-0.9 s) and a flow, two states and 7 days each of the flow's runs in
-- those states (0.3-2.4 s).
--
-- The columns: flow_runs_started is on an expression, and PostgreSQL takes an index-only scan
-- only when the columns the expression reads are in the index too (INCLUDE: stored in the
-- leaves, not part of the key); flow_runs_flow_scheduled gets the expected start time as its
-- last key column (not INCLUDE: a key column's condition is checked in the index before the
-- run's row is read, so a page of a flow's runs in a range reads only those runs, 107 -> 14 ms
-- of database CPU for a flow, two states and 7 days in START_TIME_DESC at a million runs).
-- Neither adds an index to flow_runs: a state change is never a HOT update (the
-- state is in flow_runs_state and these) and writes an entry in each index already; these
-- entries are 16 and 8 bytes longer. flow_runs_expected_start (expected_start_time, id)
-- serves its range's count as it is.
--
-- The visibility map: VACUUM sets it, and any write to a page clears the page's bit. By
-- default autovacuum vacuums a table once 20% of its rows were inserted or changed since the
-- last time (autovacuum_vacuum_insert_scale_factor, autovacuum_vacuum_scale_factor), so up
-- to a fifth of a large flow_runs could be read from the heap; here it is 2%. A vacuum that
-- finds few dead rows skips the indexes (PostgreSQL 14+), and one that finds them is due
-- anyway. On a server with autovacuum off, VACUUM is the operator's (README, "Using
-- PostgreSQL").
ALTER TABLE flow_runs SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02);
DROP INDEX flow_runs_started;
CREATE INDEX flow_runs_started ON flow_runs ((COALESCE(start_time, expected_start_time)), id)
    INCLUDE (start_time, expected_start_time);
DROP INDEX flow_runs_flow_scheduled;
CREATE INDEX flow_runs_flow_scheduled ON flow_runs (flow_id, state_type, next_scheduled_start_time, expected_start_time);
-- A new index on an expression has no statistics of its own until the table is analyzed: the
-- planner then guesses a start-time range's runs (a few hundred of a million) and reads and
-- sorts the range rather than walk the sort's index (7 ms -> 160 ms of database CPU a page at a
-- million runs, before this ANALYZE). A sample of the table: seconds at a million runs. Only
-- once the table is large enough to need it (as the server's own ANALYZE at start, from 10,000
-- events): statistics of a near-empty table would tell the planner it is empty.
DO $$
BEGIN
    IF (SELECT count(*) FROM (SELECT 1 FROM flow_runs LIMIT 10000) AS first_rows) >= 10000 THEN
        ANALYZE flow_runs;
    END IF;
END
$$;
