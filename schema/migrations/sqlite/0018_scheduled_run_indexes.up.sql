-- get_scheduled_flow_runs reads a queue's Scheduled runs soonest first. Through flow_run_queues
-- it joined every run the queue ever had to flow_runs and sorted the Scheduled ones; with the
-- run's queue on flow_runs itself one index range answers, in order, and stops at the limit.
-- A run's queue is fixed when it is created (the FlowRunCreated event), so the column never
-- changes; flow_run_queues stays for the pool and queue filters and for deleted queues.
ALTER TABLE flow_runs ADD COLUMN work_queue_id TEXT;
UPDATE flow_runs SET work_queue_id = (SELECT rq.work_queue_id FROM flow_run_queues rq WHERE rq.flow_run_id = flow_runs.id);
CREATE INDEX flow_runs_queue_scheduled ON flow_runs (work_queue_id, state_type, next_scheduled_start_time, id)
    WHERE work_queue_id IS NOT NULL;

-- /deployments/get_scheduled_flow_runs (flow.serve()): the Scheduled runs of a few deployments.
-- With only (deployment_id, next_scheduled_start_time) SQLite's planner preferred the state
-- index and read every Scheduled run of the server; with the state in the key it takes the
-- deployments' Scheduled ranges alone.
CREATE INDEX flow_runs_deployment_scheduled ON flow_runs (deployment_id, state_type, next_scheduled_start_time)
    WHERE deployment_id IS NOT NULL;
