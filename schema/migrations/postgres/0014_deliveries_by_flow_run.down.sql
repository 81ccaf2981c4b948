DROP INDEX deliveries_flow_run;
