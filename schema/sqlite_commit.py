"""What SQLite's store runs at the end of every write transaction, before its COMMIT, once the
database is at the migrations' head (eventstore/sqlite.py): upkeep that the migrations' tables
need once per transaction rather than once per row, kept beside the migrations that made them."""

BEFORE_COMMIT = (
    # Migration 0036: the names flow_run_names' insert trigger staged go into the trigram index
    # in one statement (FTS5 then writes them out as one segment, not one per name).
    "INSERT INTO flow_run_name_trigrams (rowid, name) "
    "SELECT n.id, n.name FROM flow_run_names_unindexed u JOIN flow_run_names n ON n.id = u.id",
    "DELETE FROM flow_run_names_unindexed",
)

__all__ = ["BEFORE_COMMIT"]
