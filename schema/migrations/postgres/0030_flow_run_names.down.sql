DROP TABLE flow_run_names;
-- pg_trgm stays: other objects of the database may use it.
DO $$
BEGIN
    CREATE INDEX flow_runs_name_trigrams ON flow_runs USING gin (lower(name) gin_trgm_ops);
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'runlog: no trigram index on flow run names (%)', SQLERRM;
END
$$;
