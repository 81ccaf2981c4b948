-- Counts of flow runs kept beside flow_runs, so that /flow_runs/count answers the common
-- filters (state, one tag, flow, deployment, work pool or queue, and those combined with
-- state and flow) by summing a few hundred rows instead of reading every matching run
-- (api/queries/run_counts.py). Each run is counted once per dimension: `dim` 'run' (key ''),
-- 'deployment' and 'queue' (key: the run's deployment_id / work_queue_id, '' for none) and
-- 'tag' (once per distinct tag of the run, key: the tag), under its flow and current state
-- ('' for a run without one). A count whose runs all left it stays, at 0.
--
-- Triggers on flow_runs keep it, in the transaction that writes the runs, so it is exact at
-- every snapshot: a count from it equals the query over flow_runs at the same log position.
-- The tags are read from the run's view (the writer's flow_run_tags rows are its distinct
-- tags): the one-statement append writes flow_runs and flow_run_tags in the same statement,
-- whose AFTER triggers all see both tables' final rows, so a trigger on each table could not
-- tell which of them had already counted a (run, tag) pair. Statement-level triggers with
-- transition tables: one INSERT per written statement, however many runs a batch holds.
-- Writers are serialized by the append lock (runlog_append; a rebuild's swap holds it too),
-- so no two transactions update the same count rows at once.
CREATE TABLE flow_run_counts (
    dim        text NOT NULL,
    key        text NOT NULL,
    flow_id    text NOT NULL,
    state_type text NOT NULL,
    state_name text NOT NULL,
    n          bigint NOT NULL,
    PRIMARY KEY (dim, key, flow_id, state_type, state_name)
);

CREATE FUNCTION runlog_count_flow_runs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- plpgsql plans only the branch it runs, so each names only the transition tables its
    -- trigger has (INSERT: new_rows, DELETE: old_rows, UPDATE: both).
    IF TG_OP = 'INSERT' THEN
        INSERT INTO flow_run_counts AS c (dim, key, flow_id, state_type, state_name, n)
        SELECT d.dim, d.key, r.flow_id, COALESCE(r.state_type, ''), COALESCE(r.state_name, ''), count(*)
        FROM new_rows r CROSS JOIN LATERAL (
            VALUES ('run', ''), ('deployment', COALESCE(r.deployment_id, '')), ('queue', COALESCE(r.work_queue_id, ''))
            UNION SELECT 'tag', t FROM json_array_elements_text(convert_from(r.view, 'UTF8')::json -> 'tags') t
        ) d (dim, key)
        GROUP BY 1, 2, 3, 4, 5
        ON CONFLICT (dim, key, flow_id, state_type, state_name) DO UPDATE SET n = c.n + excluded.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO flow_run_counts AS c (dim, key, flow_id, state_type, state_name, n)
        SELECT d.dim, d.key, r.flow_id, COALESCE(r.state_type, ''), COALESCE(r.state_name, ''), -count(*)
        FROM old_rows r CROSS JOIN LATERAL (
            VALUES ('run', ''), ('deployment', COALESCE(r.deployment_id, '')), ('queue', COALESCE(r.work_queue_id, ''))
            UNION SELECT 'tag', t FROM json_array_elements_text(convert_from(r.view, 'UTF8')::json -> 'tags') t
        ) d (dim, key)
        GROUP BY 1, 2, 3, 4, 5
        ON CONFLICT (dim, key, flow_id, state_type, state_name) DO UPDATE SET n = c.n + excluded.n;
    ELSE
        -- Most updates change neither the state nor a dimension (a new view, version or time):
        -- the net change of those is 0 and writes nothing.
        INSERT INTO flow_run_counts AS c (dim, key, flow_id, state_type, state_name, n)
        SELECT d.dim, d.key, r.flow_id, COALESCE(r.state_type, ''), COALESCE(r.state_name, ''), sum(r.sign)
        FROM (SELECT o.*, -1 AS sign FROM old_rows o UNION ALL SELECT n.*, 1 FROM new_rows n) r CROSS JOIN LATERAL (
            VALUES ('run', ''), ('deployment', COALESCE(r.deployment_id, '')), ('queue', COALESCE(r.work_queue_id, ''))
            UNION SELECT 'tag', t FROM json_array_elements_text(convert_from(r.view, 'UTF8')::json -> 'tags') t
        ) d (dim, key)
        GROUP BY 1, 2, 3, 4, 5
        HAVING sum(r.sign) <> 0
        ON CONFLICT (dim, key, flow_id, state_type, state_name) DO UPDATE SET n = c.n + excluded.n;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER flow_run_counts_insert AFTER INSERT ON flow_runs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION runlog_count_flow_runs();
CREATE TRIGGER flow_run_counts_update AFTER UPDATE ON flow_runs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION runlog_count_flow_runs();
CREATE TRIGGER flow_run_counts_delete AFTER DELETE ON flow_runs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION runlog_count_flow_runs();

-- The runs already stored (their distinct tags are their flow_run_tags rows).
INSERT INTO flow_run_counts (dim, key, flow_id, state_type, state_name, n)
SELECT 'run', '', flow_id, COALESCE(state_type, ''), COALESCE(state_name, ''), count(*)
FROM flow_runs GROUP BY 3, 4, 5;
INSERT INTO flow_run_counts (dim, key, flow_id, state_type, state_name, n)
SELECT 'deployment', COALESCE(deployment_id, ''), flow_id, COALESCE(state_type, ''), COALESCE(state_name, ''), count(*)
FROM flow_runs GROUP BY 2, 3, 4, 5;
INSERT INTO flow_run_counts (dim, key, flow_id, state_type, state_name, n)
SELECT 'queue', COALESCE(work_queue_id, ''), flow_id, COALESCE(state_type, ''), COALESCE(state_name, ''), count(*)
FROM flow_runs GROUP BY 2, 3, 4, 5;
INSERT INTO flow_run_counts (dim, key, flow_id, state_type, state_name, n)
SELECT 'tag', t.tag, r.flow_id, COALESCE(r.state_type, ''), COALESCE(r.state_name, ''), count(*)
FROM flow_run_tags t JOIN flow_runs r ON r.id = t.run_id GROUP BY 2, 3, 4, 5;
