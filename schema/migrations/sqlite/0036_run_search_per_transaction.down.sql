-- The staged names go into the index first; then 0035's triggers, which index every name at once.
INSERT INTO flow_run_name_trigrams (rowid, name)
    SELECT n.id, n.name FROM flow_run_names_unindexed u JOIN flow_run_names n ON n.id = u.id;
DROP TRIGGER flow_run_name_trigrams_update;
DROP TRIGGER flow_run_name_trigrams_delete;
DROP TRIGGER flow_run_name_trigrams_insert;
DROP TABLE flow_run_names_unindexed;
CREATE TRIGGER flow_run_name_trigrams_insert AFTER INSERT ON flow_run_names BEGIN
    INSERT INTO flow_run_name_trigrams (rowid, name) VALUES (new.id, new.name);
END;
CREATE TRIGGER flow_run_name_trigrams_delete AFTER DELETE ON flow_run_names BEGIN
    INSERT INTO flow_run_name_trigrams (flow_run_name_trigrams, rowid, name) VALUES ('delete', old.id, old.name);
END;
CREATE TRIGGER flow_run_name_trigrams_update AFTER UPDATE OF name, id ON flow_run_names
WHEN old.name IS NOT new.name OR old.id IS NOT new.id BEGIN
    INSERT INTO flow_run_name_trigrams (flow_run_name_trigrams, rowid, name) VALUES ('delete', old.id, old.name);
    INSERT INTO flow_run_name_trigrams (rowid, name) VALUES (new.id, new.name);
END;
