-- PostgreSQL's run_history_runs_volatile becomes partial here (see its file). SQLite's planner
-- would not read a partial index on `volatile <> 0` for the lookups' `volatile = 1` (it proves
-- only terms that the query repeats): nothing to do. The revision keeps both backends' numbers alike.
SELECT 1;
