"""The endpoints Prefect's web UI called in the browser tests, as a Markdown table.

    python -m tools.ui_endpoints v2 [ARTIFACTS]

reads the ``*-calls.json`` files tests/ui writes beside its screenshots (one per page visit, named
after the test and the visit's label, ``v1-...`` or ``v2-...``), puts names back into path
templates (ids are already ``{id}``) and prints each method and path with the pages that called
it: the record of ARCHITECTURE.md's "Prefect's web UI v2: the endpoints its pages call".
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

# Path segments that are names, not routes: (pattern of the whole path, its template).
TEMPLATES = [
    (re.compile(r"^/work_pools/(?!filter$|count$|$)[^/]+/queues/(?!filter$)[^/]+$"),
     "/work_pools/{work_pool_name}/queues/{work_queue_name}"),
    (re.compile(r"^/work_pools/(?!filter$|count$)[^/]+(?P<rest>/(queues|workers)/filter)?$"),
     "/work_pools/{work_pool_name}\\g<rest>"),
    (re.compile(r"^/automations/related-to/.+$"), "/automations/related-to/{resource_id}"),
    (re.compile(r"^/block_types/slug/[^/]+/block_documents/name/[^/]+$"),
     "/block_types/slug/{slug}/block_documents/name/{name}"),
    (re.compile(r"^/block_types/slug/[^/]+$"), "/block_types/slug/{slug}"),
    (re.compile(r"^/collections/views/[^/]+$"), "/collections/views/{view}"),
    (re.compile(r"^/artifacts/(?!filter$|latest/)[^/{]+/latest$"), "/artifacts/{key}/latest"),
    (re.compile(r"^/variables/name/[^/]+$"), "/variables/name/{name}"),
]
CALLS = re.compile(r".*-(?P<ui>v[12])-(?P<page>.+)-calls\.json$")


def template(path: str) -> str:
    for pattern, replacement in TEMPLATES:
        if pattern.match(path):
            return pattern.sub(replacement, path)
    return path


def endpoints(artifacts: Path, ui: str) -> dict[tuple[str, str], set[str]]:
    """(method, path template) -> the labels of the pages of UI that called it."""
    found: dict[tuple[str, str], set[str]] = defaultdict(set)
    for file in sorted(artifacts.glob("*-calls.json")):
        named = CALLS.match(file.name)
        if named is None or named["ui"] != ui:
            continue
        for method, path in json.loads(file.read_text()):
            found[(method, template(path))].add(named["page"])
    return found


def table(found: dict[tuple[str, str], set[str]]) -> str:
    rows = ["| method | path | pages (tests' labels) |", "|---|---|---|"]
    for method, path in sorted(found, key=lambda key: (key[1], key[0])):
        rows.append(f"| `{method}` | `{path}` | {', '.join(sorted(found[(method, path)]))} |")
    return "\n".join(rows)


def main(argv: list[str]) -> None:
    ui = argv[0] if argv else "v2"
    artifacts = Path(argv[1]) if len(argv) > 1 else Path(__file__).parents[1] / "tests" / "ui" / "artifacts"
    found = endpoints(artifacts, ui)
    print(f"{len(found)} distinct endpoints\n")
    print(table(found))


if __name__ == "__main__":
    main(sys.argv[1:])
