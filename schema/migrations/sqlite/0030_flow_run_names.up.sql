-- Flow run names in a side table, for name like_ (see the PostgreSQL migration: there it carries
-- the trigram index that was on flow_runs). SQLite has no trigram index, but the runs
-- projection and the filter are one for both backends, and a substring match over this narrow
-- table reads far less than one over flow_runs' rows and their views.
CREATE TABLE flow_run_names (
    run_id TEXT PRIMARY KEY,
    name   TEXT NOT NULL
);
INSERT INTO flow_run_names (run_id, name) SELECT id, name FROM flow_runs;
