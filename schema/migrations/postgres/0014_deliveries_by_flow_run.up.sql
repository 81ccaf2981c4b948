-- The deliveries of one flow run: when a run completes, the notifier looks up the alerts it
-- raised, to resolve them (notifier/resolving.py). Only rows that name a run are indexed.
CREATE INDEX deliveries_flow_run ON deliveries (flow_run_id, created) WHERE flow_run_id IS NOT NULL;
