-- The version of each projection's fold that built its tables (projections/rebuild.py): a
-- server whose code has another version rebuilds them from the log on start. A row named
-- 'rebuild:<name>' is a rebuild in progress beside the live tables, with the version it builds
-- (its position is the checkpoint 'rebuild:<name>' in projection_checkpoints).
CREATE TABLE projection_versions (
    name    TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
