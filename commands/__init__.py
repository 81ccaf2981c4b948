"""The write side: what every command reads as "now", and (as it grows) the one executor that
decides and appends, shared by the API routes, the CLI and background services."""
