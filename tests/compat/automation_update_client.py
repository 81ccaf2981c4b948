"""Run with the Prefect client against a server (PREFECT_API_URL): read the automation named by
the first argument, change its description, update it with the SDK, and print the tags the
client saw, as one JSON line."""

from __future__ import annotations

import json
import sys

from prefect.automations import Automation


def main(name: str) -> None:
    automation = Automation.read(name=name)
    automation.description = "edited with the Prefect SDK"
    automation.update()
    print(json.dumps({"tags": Automation.read(id=automation.id).tags}))


if __name__ == "__main__":
    main(sys.argv[1])
