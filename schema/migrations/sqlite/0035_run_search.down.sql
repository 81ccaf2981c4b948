DROP TRIGGER flow_run_name_trigrams_update;
DROP TRIGGER flow_run_name_trigrams_delete;
DROP TRIGGER flow_run_name_trigrams_insert;
DROP TABLE flow_run_name_trigrams;
ALTER TABLE flow_run_names RENAME TO flow_run_names_0035;
DROP INDEX flow_run_names_created;
CREATE TABLE flow_run_names (
    run_id TEXT PRIMARY KEY,
    name   TEXT NOT NULL,
    created INTEGER NOT NULL DEFAULT 0
);
INSERT INTO flow_run_names (run_id, name, created) SELECT run_id, name, created FROM flow_run_names_0035;
DROP TABLE flow_run_names_0035;
CREATE INDEX flow_run_names_created ON flow_run_names (created, run_id);
