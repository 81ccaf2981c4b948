DROP INDEX flow_run_queues_queue;
CREATE INDEX flow_run_queues_queue ON flow_run_queues (work_queue_id);
DROP INDEX flow_run_queues_pool;
CREATE INDEX flow_run_queues_pool ON flow_run_queues (work_pool_id);

DROP INDEX flow_runs_name;
DROP INDEX flow_runs_started;
DROP INDEX flow_runs_expected_start;
CREATE INDEX flow_runs_expected_start ON flow_runs (expected_start_time);

DROP INDEX flow_run_tags_tag;
CREATE INDEX flow_run_tags_tag ON flow_run_tags (tag);
