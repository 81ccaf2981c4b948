DROP FUNCTION runlog_append(bigint, text[], bigint[], uuid[], bigint[], text[], bigint[], uuid[], text[], bytea[]);
