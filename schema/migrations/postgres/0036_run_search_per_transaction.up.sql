-- SQLite's trigram index fills once per transaction (see the SQLite migration); PostgreSQL's
-- trigram index on flow_run_names (0030) needs nothing. The revision keeps both backends' numbers alike.
SELECT 1;
