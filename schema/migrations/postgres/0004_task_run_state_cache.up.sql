-- Read model of Prefect's task run state cache (projections/task_run_state_cache.py): COMPLETED
-- task run states filed under their cache keys, folded from the task-run-<id> streams.
-- Ids are canonical text and times are microseconds since the Unix epoch (UTC), as in 0002.
--
-- `position` is the log position of the event that wrote the state; the newest unexpired row
-- for a key answers a lookup. Rows are found by `key_hash` (SHA-256 of the key, hex): keys may
-- be long, and PostgreSQL cannot index long values. `cache_key` is the key as UTF-8 bytes.
-- `state` (the state as JSON) is NULL once the task run is deleted: the entry then answers
-- nothing, as a cache row pointing at a deleted state does in Prefect.
CREATE TABLE task_run_state_cache (
    state_id         text PRIMARY KEY,
    key_hash         text NOT NULL,
    cache_key        bytea NOT NULL,
    cache_expiration bigint,
    task_run_id      text NOT NULL,
    position         bigint NOT NULL,
    state            bytea
);
CREATE INDEX task_run_state_cache_key ON task_run_state_cache (key_hash, position);
CREATE INDEX task_run_state_cache_task_run ON task_run_state_cache (task_run_id);
