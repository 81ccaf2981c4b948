-- Back to 0006's functions, which run every statement whatever the arrays hold.
CREATE OR REPLACE FUNCTION runlog_apply_flow_runs(p_rows flow_runs[], p_deleted text[], p_untagged text[],
                                       p_tag_runs text[], p_tags text[])
RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO flow_runs SELECT * FROM unnest(p_rows)
    ON CONFLICT (id) DO UPDATE SET version = excluded.version, name = excluded.name,
        state_type = excluded.state_type, state_name = excluded.state_name, start_time = excluded.start_time,
        end_time = excluded.end_time, expected_start_time = excluded.expected_start_time,
        next_scheduled_start_time = excluded.next_scheduled_start_time, work_queue_name = excluded.work_queue_name,
        flow_version = excluded.flow_version, view = excluded.view;
    DELETE FROM flow_runs WHERE id = ANY(p_deleted);
    DELETE FROM flow_run_tags WHERE run_id = ANY(p_untagged);
    INSERT INTO flow_run_tags (run_id, tag) SELECT * FROM unnest(p_tag_runs, p_tags) ON CONFLICT DO NOTHING;
    RETURN cardinality(p_rows);
END
$$;

CREATE OR REPLACE FUNCTION runlog_apply_task_runs(p_rows task_runs[], p_deleted text[], p_untagged text[],
                                       p_tag_runs text[], p_tags text[])
RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO task_runs SELECT * FROM unnest(p_rows)
    ON CONFLICT (id) DO UPDATE SET version = excluded.version, flow_run_id = excluded.flow_run_id,
        name = excluded.name, task_key = excluded.task_key, dynamic_key = excluded.dynamic_key,
        state_type = excluded.state_type, state_name = excluded.state_name,
        state_timestamp = excluded.state_timestamp, start_time = excluded.start_time,
        end_time = excluded.end_time, expected_start_time = excluded.expected_start_time, view = excluded.view;
    DELETE FROM task_runs WHERE id = ANY(p_deleted);
    DELETE FROM task_run_tags WHERE run_id = ANY(p_untagged);
    INSERT INTO task_run_tags (run_id, tag) SELECT * FROM unnest(p_tag_runs, p_tags) ON CONFLICT DO NOTHING;
    RETURN cardinality(p_rows);
END
$$;
