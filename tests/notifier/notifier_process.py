"""``runlog server start`` or ``runlog notifier start`` in a process of its own, sending through
the JSON webhook sender to the channels a test names, for the multi-process tests.

    python -m tests.notifier.notifier_process server start [--port N]
    python -m tests.notifier.notifier_process notifier start

Settings come from the environment as for ``runlog``; RUNLOG_TEST_CHANNELS is a JSON object of
channel id -> receiver URL. The server prints runlog's banner, so tests/servers.py can start it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from uuid import UUID

from runlog.api.logging import configure_logging
from runlog.api.notifier import NotifierParts, run_notifier
from runlog.api.server import bound_port, listen, serve
from runlog.api.settings import load_settings
from runlog.notifier.seams import Channel
from runlog.notifier.webhook import KIND, JsonWebhookSender


class Channels:
    def __init__(self, urls: dict[str, str]) -> None:
        self.urls = urls

    async def __call__(self, channel_id: UUID) -> Channel | None:
        url = self.urls.get(str(channel_id))
        return None if url is None else Channel(KIND, {"url": url})


def main(argv: list[str]) -> None:
    settings = load_settings()
    channels = Channels(json.loads(os.environ.get("RUNLOG_TEST_CHANNELS", "{}")))
    parts = NotifierParts(sender=JsonWebhookSender(timeout=30), loader=lambda _store: channels)
    if argv[:2] == ["notifier", "start"]:
        configure_logging(settings.logging_level, stream=sys.stderr)
        asyncio.run(run_notifier(settings, parts))
        return
    assert argv[:2] == ["server", "start"], argv
    port = int(argv[argv.index("--port") + 1]) if "--port" in argv else 0
    sock = listen("127.0.0.1", port)
    print(f"Starting runlog server on http://127.0.0.1:{bound_port(sock)}/api", flush=True)
    serve(settings, sock, notifier=parts)


if __name__ == "__main__":
    main(sys.argv[1:])
