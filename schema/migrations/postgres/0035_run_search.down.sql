DELETE FROM flow_run_counts WHERE dim IN ('expected_hour', 'start_hour');
