-- PostgreSQL's flow_runs_parent_task_run becomes partial here (see its file). SQLite rewrites an
-- index entry on UPDATE only when the row's indexed columns change, so a state change never
-- touches this index there: nothing to do. The revision keeps both backends' numbers alike.
SELECT 1;
