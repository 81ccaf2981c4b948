DROP TRIGGER flow_run_counts_tag_update;
DROP TRIGGER flow_run_counts_tag_delete;
DROP TRIGGER flow_run_counts_tag_insert;
DROP TRIGGER flow_run_counts_update;
DROP TRIGGER flow_run_counts_delete;
DROP TRIGGER flow_run_counts_insert;

-- 0025's triggers again.
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
