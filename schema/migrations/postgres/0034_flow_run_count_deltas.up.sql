-- flow_run_counts' amounts appended rather than added to its rows (projections/runs_writer.py,
-- eventstore/tables.py Table.deltas): every append batch moved runs between the same few hot
-- rows, so each batch updated them (an index probe, a new row version, a dead one for the next
-- batch to walk past: bench_cpu_split's PostgreSQL CPU per transition was 89-104 us with no count
-- written at all, 104-151 with the upserts; with deltas and their fold, 99-135, median 104). Now each
-- batch inserts its summed amounts here, into a table without a key or index, and the writer
-- folds them into flow_run_counts in one statement every second (eventstore/postgres.py,
-- compact_counts), then vacuums this table so it stays a few pages. A count is its row's n
-- plus its deltas' (flow_run_counts_totals, which the count queries read: api/queries/run_counts.py),
-- exact at every snapshot as before. SQLite keeps adding to the rows (0034 there is empty).
CREATE TABLE flow_run_count_deltas (
    dim        text NOT NULL,
    key        text NOT NULL,
    flow_id    text NOT NULL,
    state_type text NOT NULL,
    state_name text NOT NULL,
    n          bigint NOT NULL
);
CREATE VIEW flow_run_counts_totals AS
SELECT dim, key, flow_id, state_type, state_name, n FROM flow_run_counts
UNION ALL
SELECT dim, key, flow_id, state_type, state_name, n FROM flow_run_count_deltas;
