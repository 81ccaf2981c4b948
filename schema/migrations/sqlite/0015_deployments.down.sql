DROP INDEX flow_runs_deployment;
DROP TABLE deployment_schedules;
DROP TABLE deployments;
