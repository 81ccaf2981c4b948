ALTER TABLE flow_runs DROP COLUMN created_by_type;
ALTER TABLE flow_runs DROP COLUMN created_by_id;
CREATE TABLE flow_run_queues (
    flow_run_id   text PRIMARY KEY,
    work_queue_id text NOT NULL,
    work_pool_id  text NOT NULL
);
INSERT INTO flow_run_queues (flow_run_id, work_queue_id, work_pool_id)
    SELECT fr.id, fr.work_queue_id, wq.work_pool_id FROM flow_runs fr JOIN work_queues wq ON wq.id = fr.work_queue_id;
CREATE INDEX flow_run_queues_queue ON flow_run_queues (work_queue_id);
CREATE INDEX flow_run_queues_pool ON flow_run_queues (work_pool_id);
