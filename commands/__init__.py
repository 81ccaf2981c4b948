"""The write side: the one executor that decides and appends, and the commands of every resource
(flows, flow runs, task runs, concurrency, variables, artifacts, client events, run logs) as its
thin callers, taking domain inputs; shared by the API routes, the CLI and background services."""
