"""The real runlog app served in this process; tests/servers.py holds it (with every other way
the suite starts a server), and API tests import it from here as they always have."""

from __future__ import annotations

from ..servers import Server, serve, serve_app

__all__ = ["Server", "serve", "serve_app"]
