-- Read models of variables and artifacts (projections/variables.py, projections/artifacts.py),
-- folded from the "variables" stream and the artifact-<id> streams. Each row keeps its whole
-- view as JSON in `view` and copies what filters and sorts need into columns; ids are
-- canonical text and times microseconds since the Unix epoch (UTC), as in 0002.
--
-- Variable names are unique because the commands decide every variable write on the one
-- "variables" stream; the index is not UNIQUE so that replaying a log pushed from elsewhere
-- can never fail an append (reads by name then take the oldest).
CREATE TABLE variables (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    view    BLOB NOT NULL
);
CREATE INDEX variables_name ON variables (name);

-- A variable's tags, one row each (no index on the tag itself: tags are unbounded text).
CREATE TABLE variable_tags (
    variable_id TEXT NOT NULL,
    tag         TEXT NOT NULL,
    PRIMARY KEY (variable_id, tag)
);

-- `position` is the log position of the artifact's creation: it breaks ties between artifacts
-- of one key created at the same moment, so "the latest" is the same on every rebuild.
CREATE TABLE artifacts (
    id          TEXT PRIMARY KEY,
    key         TEXT,
    type        TEXT,
    flow_run_id TEXT,
    task_run_id TEXT,
    created     INTEGER NOT NULL,
    updated     INTEGER NOT NULL,
    position    INTEGER NOT NULL,
    view        BLOB NOT NULL
);
CREATE INDEX artifacts_key_created ON artifacts (key, created);
CREATE INDEX artifacts_flow_run ON artifacts (flow_run_id);
CREATE INDEX artifacts_task_run ON artifacts (task_run_id);

-- Prefect's artifact_collection: the latest artifact of each key. Everything but its own id
-- and creation time is the latest artifact's, read through latest_id.
CREATE TABLE artifact_collections (
    key       TEXT PRIMARY KEY,
    id        TEXT NOT NULL,
    latest_id TEXT NOT NULL,
    created   INTEGER NOT NULL
);
CREATE INDEX artifact_collections_latest ON artifact_collections (latest_id);
