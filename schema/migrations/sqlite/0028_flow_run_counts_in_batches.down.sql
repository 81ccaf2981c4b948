-- 0027's triggers again (the counts are right: the runs projection kept them until now).
CREATE TRIGGER flow_run_counts_insert AFTER INSERT ON flow_runs BEGIN
    INSERT INTO flow_run_counts (dim, key, flow_id, state_type, state_name, n)
    VALUES ('run', '', new.flow_id, COALESCE(new.state_type, ''), COALESCE(new.state_name, ''), 1),
           ('deployment', COALESCE(new.deployment_id, ''), new.flow_id, COALESCE(new.state_type, ''), COALESCE(new.state_name, ''), 1),
           ('queue', COALESCE(new.work_queue_id, ''), new.flow_id, COALESCE(new.state_type, ''), COALESCE(new.state_name, ''), 1)
    ON CONFLICT (dim, key, flow_id, state_type, state_name) DO UPDATE SET n = n + excluded.n;
    INSERT INTO flow_run_counts (dim, key, flow_id, state_type, state_name, n)
    SELECT 'tag', t.tag, new.flow_id, COALESCE(new.state_type, ''), COALESCE(new.state_name, ''), 1
    FROM flow_run_tags t WHERE t.run_id = new.id
    ON CONFLICT (dim, key, flow_id, state_type, state_name) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER flow_run_counts_delete AFTER DELETE ON flow_runs BEGIN
    INSERT INTO flow_run_counts (dim, key, flow_id, state_type, state_name, n)
    VALUES ('run', '', old.flow_id, COALESCE(old.state_type, ''), COALESCE(old.state_name, ''), -1),
           ('deployment', COALESCE(old.deployment_id, ''), old.flow_id, COALESCE(old.state_type, ''), COALESCE(old.state_name, ''), -1),
           ('queue', COALESCE(old.work_queue_id, ''), old.flow_id, COALESCE(old.state_type, ''), COALESCE(old.state_name, ''), -1)
    ON CONFLICT (dim, key, flow_id, state_type, state_name) DO UPDATE SET n = n + excluded.n;
    INSERT INTO flow_run_counts (dim, key, flow_id, state_type, state_name, n)
    SELECT 'tag', t.tag, old.flow_id, COALESCE(old.state_type, ''), COALESCE(old.state_name, ''), -1
    FROM flow_run_tags t WHERE t.run_id = old.id
    ON CONFLICT (dim, key, flow_id, state_type, state_name) DO UPDATE SET n = n + excluded.n;
END;

-- Most updates change neither the state nor a dimension (a new view, version or time): the
-- WHEN skips them. A change of tags is flow_run_tags' rows, counted by their own triggers.
CREATE TRIGGER flow_run_counts_update AFTER UPDATE ON flow_runs
WHEN old.state_type IS NOT new.state_type OR old.state_name IS NOT new.state_name
    OR old.flow_id IS NOT new.flow_id OR old.deployment_id IS NOT new.deployment_id
    OR old.work_queue_id IS NOT new.work_queue_id OR old.id IS NOT new.id
BEGIN
    INSERT INTO flow_run_counts (dim, key, flow_id, state_type, state_name, n)
    VALUES ('run', '', old.flow_id, COALESCE(old.state_type, ''), COALESCE(old.state_name, ''), -1),
           ('deployment', COALESCE(old.deployment_id, ''), old.flow_id, COALESCE(old.state_type, ''), COALESCE(old.state_name, ''), -1),
           ('queue', COALESCE(old.work_queue_id, ''), old.flow_id, COALESCE(old.state_type, ''), COALESCE(old.state_name, ''), -1)
    ON CONFLICT (dim, key, flow_id, state_type, state_name) DO UPDATE SET n = n + excluded.n;
    INSERT INTO flow_run_counts (dim, key, flow_id, state_type, state_name, n)
    VALUES ('run', '', new.flow_id, COALESCE(new.state_type, ''), COALESCE(new.state_name, ''), 1),
           ('deployment', COALESCE(new.deployment_id, ''), new.flow_id, COALESCE(new.state_type, ''), COALESCE(new.state_name, ''), 1),
           ('queue', COALESCE(new.work_queue_id, ''), new.flow_id, COALESCE(new.state_type, ''), COALESCE(new.state_name, ''), 1)
    ON CONFLICT (dim, key, flow_id, state_type, state_name) DO UPDATE SET n = n + excluded.n;
    INSERT INTO flow_run_counts (dim, key, flow_id, state_type, state_name, n)
    SELECT 'tag', t.tag, old.flow_id, COALESCE(old.state_type, ''), COALESCE(old.state_name, ''), -1
    FROM flow_run_tags t WHERE t.run_id = old.id
    ON CONFLICT (dim, key, flow_id, state_type, state_name) DO UPDATE SET n = n + excluded.n;
    INSERT INTO flow_run_counts (dim, key, flow_id, state_type, state_name, n)
    SELECT 'tag', t.tag, new.flow_id, COALESCE(new.state_type, ''), COALESCE(new.state_name, ''), 1
    FROM flow_run_tags t WHERE t.run_id = new.id
    ON CONFLICT (dim, key, flow_id, state_type, state_name) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER flow_run_counts_tag_insert AFTER INSERT ON flow_run_tags BEGIN
    INSERT INTO flow_run_counts (dim, key, flow_id, state_type, state_name, n)
    SELECT 'tag', new.tag, r.flow_id, COALESCE(r.state_type, ''), COALESCE(r.state_name, ''), 1
    FROM flow_runs r WHERE r.id = new.run_id
    ON CONFLICT (dim, key, flow_id, state_type, state_name) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER flow_run_counts_tag_delete AFTER DELETE ON flow_run_tags BEGIN
    INSERT INTO flow_run_counts (dim, key, flow_id, state_type, state_name, n)
    SELECT 'tag', old.tag, r.flow_id, COALESCE(r.state_type, ''), COALESCE(r.state_name, ''), -1
    FROM flow_runs r WHERE r.id = old.run_id
    ON CONFLICT (dim, key, flow_id, state_type, state_name) DO UPDATE SET n = n + excluded.n;
END;

-- flow_run_tags has only its key, so its rows are not updated; were one, it moves its pair.
CREATE TRIGGER flow_run_counts_tag_update AFTER UPDATE ON flow_run_tags
WHEN old.run_id IS NOT new.run_id OR old.tag IS NOT new.tag
BEGIN
    INSERT INTO flow_run_counts (dim, key, flow_id, state_type, state_name, n)
    SELECT 'tag', old.tag, r.flow_id, COALESCE(r.state_type, ''), COALESCE(r.state_name, ''), -1
    FROM flow_runs r WHERE r.id = old.run_id
    ON CONFLICT (dim, key, flow_id, state_type, state_name) DO UPDATE SET n = n + excluded.n;
    INSERT INTO flow_run_counts (dim, key, flow_id, state_type, state_name, n)
    SELECT 'tag', new.tag, r.flow_id, COALESCE(r.state_type, ''), COALESCE(r.state_name, ''), 1
    FROM flow_runs r WHERE r.id = new.run_id
    ON CONFLICT (dim, key, flow_id, state_type, state_name) DO UPDATE SET n = n + excluded.n;
END;
