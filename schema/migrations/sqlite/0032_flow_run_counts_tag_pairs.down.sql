-- The pairs' rows go; the runs projection of before 0032 neither writes nor reads them.
DELETE FROM flow_run_counts WHERE dim = 'tag_pair';
