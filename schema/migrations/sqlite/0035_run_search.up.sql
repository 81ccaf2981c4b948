-- A name like_ (a case-insensitive substring match) read every name: at 1,000,000 runs a count
-- took 1.9-4 s. SQLite (3.34+) has what PostgreSQL's pg_trgm index gives there (0030): an FTS5
-- table with the trigram tokenizer, where the substring of 3 or more characters is a phrase of
-- its trigrams (api/queries/run_filters.py). It holds no copy of the names (external content:
-- flow_run_names), only the index, keyed by an INTEGER PRIMARY KEY of flow_run_names: the
-- implicit rowid of the table 0030 made could be renumbered by a VACUUM, which would point the
-- index at other runs. Triggers keep the index in the statement that writes a name (a run
-- created, renamed, deleted; a rebuild's swap), so it is exact at every snapshot.
ALTER TABLE flow_run_names RENAME TO flow_run_names_0030;
DROP INDEX flow_run_names_created;
CREATE TABLE flow_run_names (
    run_id  TEXT NOT NULL UNIQUE,
    name    TEXT NOT NULL,
    created INTEGER NOT NULL DEFAULT 0,
    -- Not one of the projection's columns (projections/runs_writer.py): the trigram index's key.
    id      INTEGER PRIMARY KEY
);
INSERT INTO flow_run_names (run_id, name, created) SELECT run_id, name, created FROM flow_run_names_0030;
DROP TABLE flow_run_names_0030;
CREATE INDEX flow_run_names_created ON flow_run_names (created, run_id);

CREATE VIRTUAL TABLE flow_run_name_trigrams USING fts5(
    name, content='flow_run_names', content_rowid='id', tokenize='trigram'
);
INSERT INTO flow_run_name_trigrams (flow_run_name_trigrams) VALUES ('rebuild');

CREATE TRIGGER flow_run_name_trigrams_insert AFTER INSERT ON flow_run_names BEGIN
    INSERT INTO flow_run_name_trigrams (rowid, name) VALUES (new.id, new.name);
END;
CREATE TRIGGER flow_run_name_trigrams_delete AFTER DELETE ON flow_run_names BEGIN
    INSERT INTO flow_run_name_trigrams (flow_run_name_trigrams, rowid, name) VALUES ('delete', old.id, old.name);
END;
-- The runs writer's upsert sets every column of a run it writes; only a new name is indexed anew.
CREATE TRIGGER flow_run_name_trigrams_update AFTER UPDATE OF name, id ON flow_run_names
WHEN old.name IS NOT new.name OR old.id IS NOT new.id BEGIN
    INSERT INTO flow_run_name_trigrams (flow_run_name_trigrams, rowid, name) VALUES ('delete', old.id, old.name);
    INSERT INTO flow_run_name_trigrams (rowid, name) VALUES (new.id, new.name);
END;

