-- The pairs' and the unpaired tags' rows go; the runs projection of before 0032 neither writes nor reads them.
DELETE FROM flow_run_counts WHERE dim IN ('tag_pair', 'tag_unpaired');
