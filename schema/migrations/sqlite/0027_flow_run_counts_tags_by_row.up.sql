-- flow_run_counts (0025) kept by cheaper triggers on SQLite: they cost 40-45 µs of CPU per
-- state change (bench/bench_cpu_split.py), most of a transition's regression since b803cc8.
-- The old ones parsed both JSON views of every changed run for its tags, and summed the
-- old and new rows through UNION and GROUP BY; these write each count row with a plain upsert.
--
-- The 'tag' counts are now kept from flow_run_tags (the run's distinct tags, which 0025's
-- backfill counted) rather than the views: as an invariant over the two tables, exact after
-- every row written, whichever of them a batch writes first. Each (run, tag) pair, a
-- flow_run_tags row whose run is in flow_runs, is counted once under the run's flow and state:
-- - a flow_runs row inserted, updated or deleted moves its pairs present now (its flow_run_tags
--   rows) to, between or out of its counts;
-- - a flow_run_tags row inserted or deleted adds or removes its pair under its run's current
--   flow_runs row (nothing when the run is not there).
DROP TRIGGER flow_run_counts_insert;
DROP TRIGGER flow_run_counts_update;
DROP TRIGGER flow_run_counts_delete;

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
