-- 0025's triggers again (the counts are right: the runs projection kept them until now).
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
