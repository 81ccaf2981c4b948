"""runlog's outer layer: the HTTP API (a later issue), settings, logging and the runlog CLI."""
