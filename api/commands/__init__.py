"""The runlog CLI's command groups, one module per group; api/cli.py assembles them."""
