DROP INDEX flow_runs_name;
DROP INDEX flow_runs_started;
DROP INDEX flow_runs_expected_start;
CREATE INDEX flow_runs_expected_start ON flow_runs (expected_start_time);

DROP INDEX flow_run_tags_tag;
CREATE INDEX flow_run_tags_tag ON flow_run_tags (tag);
