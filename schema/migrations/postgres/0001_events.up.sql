-- The event log: the only source of truth (DESIGN.md, "The one rule").
-- position is assigned by runlog_lock_and_probe's caller while it holds the append lock, never
-- by a sequence: a sequence hands out numbers in one order and commits in another, and a
-- reader tailing by position would skip rows that commit late.
CREATE TABLE events (
    position    bigint      PRIMARY KEY,
    stream_id   text        NOT NULL,
    version     bigint      NOT NULL,
    id          uuid        NOT NULL UNIQUE,
    type        text        NOT NULL,
    data        bytea       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (stream_id, version)
);

-- Step one of a batch append, in one round trip: take the append lock, then report the head
-- position, the current version of each stream in p_streams and the stored events among p_ids.
-- The lock is transaction-scoped (released by COMMIT or ROLLBACK) and advisory, so unlike
-- LOCK TABLE it does not stall behind VACUUM. The function is VOLATILE and the caller runs in
-- READ COMMITTED, so every query after the lock sees what the previous holder committed.
CREATE FUNCTION runlog_lock_and_probe(p_streams text[], p_ids uuid[])
RETURNS TABLE (o_kind "char", o_position bigint, o_stream_id text, o_version bigint, o_id uuid,
               o_type text, o_data bytea, o_recorded_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(125762588864359);  -- 'runlog' in hex: the append lock
    RETURN QUERY
        SELECT 'h'::"char", (SELECT coalesce(max(e.position), 0) FROM events e),
               NULL::text, NULL::bigint, NULL::uuid, NULL::text, NULL::bytea, NULL::timestamptz;
    RETURN QUERY
        SELECT 's'::"char", NULL::bigint, s.stream_id,
               (SELECT coalesce(max(e.version), 0) FROM events e WHERE e.stream_id = s.stream_id),
               NULL::uuid, NULL::text, NULL::bytea, NULL::timestamptz
        FROM unnest(p_streams) AS s(stream_id);
    RETURN QUERY
        SELECT 'e'::"char", e.position, e.stream_id, e.version, e.id, e.type, e.data, e.recorded_at
        FROM events e WHERE e.id = ANY(p_ids);
END
$$;

-- Step two: insert the planned rows and wake subscribers in every process. NOTIFY is only a
-- hint (readers always re-read the table) and is delivered at commit, once per batch.
CREATE FUNCTION runlog_insert(p_positions bigint[], p_streams text[], p_versions bigint[],
                              p_ids uuid[], p_types text[], p_data bytea[])
RETURNS TABLE (o_position bigint, o_recorded_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN QUERY
        INSERT INTO events AS e (position, stream_id, version, id, type, data)
        SELECT * FROM unnest(p_positions, p_streams, p_versions, p_ids, p_types, p_data)
        RETURNING e.position, e.recorded_at;
    PERFORM pg_notify('runlog_events', p_positions[cardinality(p_positions)]::text);
END
$$;
