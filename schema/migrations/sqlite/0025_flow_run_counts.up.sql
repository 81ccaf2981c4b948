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
-- tags), as on PostgreSQL, where both tables are written by one statement.
CREATE TABLE flow_run_counts (
    dim        TEXT NOT NULL,
    key        TEXT NOT NULL,
    flow_id    TEXT NOT NULL,
    state_type TEXT NOT NULL,
    state_name TEXT NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (dim, key, flow_id, state_type, state_name)
) WITHOUT ROWID;

CREATE TRIGGER flow_run_counts_insert AFTER INSERT ON flow_runs BEGIN
    INSERT INTO flow_run_counts (dim, key, flow_id, state_type, state_name, n)
    SELECT d.dim, d.key, new.flow_id, COALESCE(new.state_type, ''), COALESCE(new.state_name, ''), 1
    FROM (
        SELECT 'run' AS dim, '' AS key UNION SELECT 'deployment', COALESCE(new.deployment_id, '')
        UNION SELECT 'queue', COALESCE(new.work_queue_id, '')
        UNION SELECT 'tag', t.value FROM json_each(CAST(new.view AS TEXT), '$.tags') t
    ) d WHERE 1
    ON CONFLICT (dim, key, flow_id, state_type, state_name) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER flow_run_counts_delete AFTER DELETE ON flow_runs BEGIN
    INSERT INTO flow_run_counts (dim, key, flow_id, state_type, state_name, n)
    SELECT d.dim, d.key, old.flow_id, COALESCE(old.state_type, ''), COALESCE(old.state_name, ''), -1
    FROM (
        SELECT 'run' AS dim, '' AS key UNION SELECT 'deployment', COALESCE(old.deployment_id, '')
        UNION SELECT 'queue', COALESCE(old.work_queue_id, '')
        UNION SELECT 'tag', t.value FROM json_each(CAST(old.view AS TEXT), '$.tags') t
    ) d WHERE 1
    ON CONFLICT (dim, key, flow_id, state_type, state_name) DO UPDATE SET n = n + excluded.n;
END;

-- Most updates change neither the state nor a dimension (a new view, version or time): the
-- WHEN skips them.
CREATE TRIGGER flow_run_counts_update AFTER UPDATE ON flow_runs
WHEN old.state_type IS NOT new.state_type OR old.state_name IS NOT new.state_name
    OR old.flow_id IS NOT new.flow_id OR old.deployment_id IS NOT new.deployment_id
    OR old.work_queue_id IS NOT new.work_queue_id
    OR json_extract(CAST(old.view AS TEXT), '$.tags') IS NOT json_extract(CAST(new.view AS TEXT), '$.tags')
BEGIN
    INSERT INTO flow_run_counts (dim, key, flow_id, state_type, state_name, n)
    SELECT d.dim, d.key, d.flow_id, d.state_type, d.state_name, sum(d.n)
    FROM (
        SELECT 'run' AS dim, '' AS key, old.flow_id AS flow_id, COALESCE(old.state_type, '') AS state_type,
               COALESCE(old.state_name, '') AS state_name, -1 AS n
        UNION SELECT 'deployment', COALESCE(old.deployment_id, ''), old.flow_id, COALESCE(old.state_type, ''),
               COALESCE(old.state_name, ''), -1
        UNION SELECT 'queue', COALESCE(old.work_queue_id, ''), old.flow_id, COALESCE(old.state_type, ''),
               COALESCE(old.state_name, ''), -1
        UNION SELECT 'tag', t.value, old.flow_id, COALESCE(old.state_type, ''), COALESCE(old.state_name, ''), -1
               FROM json_each(CAST(old.view AS TEXT), '$.tags') t
        UNION SELECT 'run', '', new.flow_id, COALESCE(new.state_type, ''), COALESCE(new.state_name, ''), 1
        UNION SELECT 'deployment', COALESCE(new.deployment_id, ''), new.flow_id, COALESCE(new.state_type, ''),
               COALESCE(new.state_name, ''), 1
        UNION SELECT 'queue', COALESCE(new.work_queue_id, ''), new.flow_id, COALESCE(new.state_type, ''),
               COALESCE(new.state_name, ''), 1
        UNION SELECT 'tag', t.value, new.flow_id, COALESCE(new.state_type, ''), COALESCE(new.state_name, ''), 1
               FROM json_each(CAST(new.view AS TEXT), '$.tags') t
    ) d
    GROUP BY d.dim, d.key, d.flow_id, d.state_type, d.state_name
    HAVING sum(d.n) <> 0
    ON CONFLICT (dim, key, flow_id, state_type, state_name) DO UPDATE SET n = n + excluded.n;
END;

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
