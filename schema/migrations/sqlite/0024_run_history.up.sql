-- The pre-aggregated run history (projections/run_history.py), an asynchronous projection.
-- Each run's part in it, as folded up to the projection's checkpoint: `kind` is 'flow_run' or
-- 'task_run'; times are microseconds since the Unix epoch; `volatile` is 0 for a settled run,
-- 1 for a Running one (its run time depends on "now": kept out of the cells, tallied at read
-- time from these rows), 2 for one not started and not finished (late by now - expected once
-- past due: counted in the cells, its lateness summed at read time).
CREATE TABLE run_history_runs (
    kind                TEXT NOT NULL,
    id                  TEXT NOT NULL,
    expected_start_time INTEGER,
    start_time          INTEGER,
    end_time            INTEGER,
    total_run_time      REAL NOT NULL,
    state_type          TEXT,
    state_name          TEXT,
    state_timestamp     INTEGER,
    volatile            INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX run_history_runs_volatile ON run_history_runs (kind, volatile, expected_start_time);

-- Counts and time sums (microseconds) of the runs that are not Running, per bucket of
-- expected start time at each grain (60 s, 3600 s, 86400 s; `bucket` is the bucket's start)
-- and current state; `sum_lateness` is the settled runs' lateness; `waiting` counts the runs
-- not started and not finished and `sum_offset` adds their expected start - `bucket`, so that
-- their lateness at any "now" past the bucket is waiting * (now - bucket) - sum_offset. A
-- cell whose count falls to 0 is deleted.
CREATE TABLE run_history_cells (
    kind         TEXT NOT NULL,
    grain        INTEGER NOT NULL,
    bucket       INTEGER NOT NULL,
    state_type   TEXT NOT NULL,
    state_name   TEXT NOT NULL,
    count_runs   INTEGER NOT NULL,
    sum_run_time INTEGER NOT NULL,
    sum_lateness INTEGER NOT NULL,
    waiting      INTEGER NOT NULL,
    sum_offset   INTEGER NOT NULL,
    PRIMARY KEY (kind, grain, bucket, state_type, state_name)
);
