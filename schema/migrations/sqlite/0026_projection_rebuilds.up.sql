-- When each projection was last rebuilt from the log (projections/rebuild.py), written in the
-- swap's transaction: finished_at in microseconds since the Unix epoch, the log position the
-- rebuilt tables reached, the events folded and the rebuild's wall time. Shown by
-- `runlog projections ls`, GET /api/admin/projections and the /runlog/projections page.
CREATE TABLE projection_rebuilds (
    name        TEXT PRIMARY KEY,
    finished_at BIGINT NOT NULL,
    position    BIGINT NOT NULL,
    events      BIGINT NOT NULL,
    seconds     DOUBLE PRECISION NOT NULL
);
