-- Back to 0005's runlog_append, which probes every stream version and id under the lock.
CREATE OR REPLACE FUNCTION runlog_append(p_head bigint, p_streams text[], p_stream_versions bigint[], p_ids uuid[],
                              p_positions bigint[], p_row_streams text[], p_versions bigint[],
                              p_row_ids uuid[], p_types text[], p_data bytea[])
RETURNS TABLE (o_kind "char", o_position bigint, o_stream_id text, o_version bigint, o_id uuid,
               o_type text, o_data bytea, o_recorded_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_head bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(125762588864359);  -- the append lock, as in runlog_lock_and_probe
    SELECT coalesce(max(e.position), 0) INTO v_head FROM events e;
    IF v_head = p_head
       AND NOT EXISTS (
           SELECT 1 FROM unnest(p_streams, p_stream_versions) AS s(stream_id, version)
           WHERE (SELECT coalesce(max(e.version), 0) FROM events e WHERE e.stream_id = s.stream_id) <> s.version)
       AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = ANY(p_ids)) THEN
        RETURN QUERY
            SELECT 'k'::"char", v_head, NULL::text, NULL::bigint, NULL::uuid, NULL::text, NULL::bytea,
                   NULL::timestamptz;
        IF cardinality(p_positions) > 0 THEN
            RETURN QUERY
                INSERT INTO events AS e (position, stream_id, version, id, type, data)
                SELECT * FROM unnest(p_positions, p_row_streams, p_versions, p_row_ids, p_types, p_data)
                RETURNING 'i'::"char", e.position, NULL::text, NULL::bigint, NULL::uuid, NULL::text,
                          NULL::bytea, e.recorded_at;
            PERFORM pg_notify('runlog_events', p_positions[cardinality(p_positions)]::text);
        END IF;
        RETURN;
    END IF;
    RETURN QUERY
        SELECT 'h'::"char", v_head, NULL::text, NULL::bigint, NULL::uuid, NULL::text, NULL::bytea,
               NULL::timestamptz;
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
