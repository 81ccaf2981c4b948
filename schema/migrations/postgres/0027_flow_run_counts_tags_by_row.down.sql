-- Nothing on PostgreSQL: SQLite's 0027 replaces its row-level triggers for flow_run_counts;
-- PostgreSQL keeps 0025's statement-level ones (one INSERT per written statement).
SELECT 1;
