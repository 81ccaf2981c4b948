DROP FUNCTION runlog_insert(bigint[], text[], bigint[], uuid[], text[], bytea[]);
DROP FUNCTION runlog_lock_and_probe(text[], uuid[]);
DROP TABLE events;
