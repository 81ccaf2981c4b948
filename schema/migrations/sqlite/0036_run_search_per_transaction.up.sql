-- 0035's insert trigger put each new name into the trigram index in its own statement, and FTS5
-- writes out its pending terms at every statement's savepoint: each created run's name became an
-- index segment of its own, merged again and again. About 20 µs of the writer's CPU per created
-- run, where one INSERT ... SELECT of a transaction's new names costs about 5 (a file database,
-- batches of 32 upserts; bench_cpu_split: 5-10 µs per transition). A new name is now staged in
-- flow_run_names_unindexed, and SQLite's store indexes the staged names in one statement before
-- every write transaction's COMMIT (schema/sqlite_commit.py), so the index is still exact at every
-- snapshot a store's writer commits. A rename and a deletion, rare, keep writing the index at once.
CREATE TABLE flow_run_names_unindexed (
    id INTEGER PRIMARY KEY  -- flow_run_names.id of a name not in the index yet
);

DROP TRIGGER flow_run_name_trigrams_insert;
CREATE TRIGGER flow_run_name_trigrams_insert AFTER INSERT ON flow_run_names BEGIN
    INSERT OR IGNORE INTO flow_run_names_unindexed (id) VALUES (new.id);
END;

-- A staged name has no entries in the index: deleting them would corrupt it (FTS5's 'delete'
-- trusts the values it is given), so only an indexed one is deleted there.
DROP TRIGGER flow_run_name_trigrams_delete;
CREATE TRIGGER flow_run_name_trigrams_delete AFTER DELETE ON flow_run_names BEGIN
    INSERT INTO flow_run_name_trigrams (flow_run_name_trigrams, rowid, name)
        SELECT 'delete', old.id, old.name WHERE NOT EXISTS (SELECT 1 FROM flow_run_names_unindexed WHERE id = old.id);
    DELETE FROM flow_run_names_unindexed WHERE id = old.id;
END;
DROP TRIGGER flow_run_name_trigrams_update;
CREATE TRIGGER flow_run_name_trigrams_update AFTER UPDATE OF name, id ON flow_run_names
WHEN old.name IS NOT new.name OR old.id IS NOT new.id BEGIN
    INSERT INTO flow_run_name_trigrams (flow_run_name_trigrams, rowid, name)
        SELECT 'delete', old.id, old.name WHERE NOT EXISTS (SELECT 1 FROM flow_run_names_unindexed WHERE id = old.id);
    DELETE FROM flow_run_names_unindexed WHERE id = old.id;
    INSERT INTO flow_run_name_trigrams (rowid, name) VALUES (new.id, new.name);
END;
