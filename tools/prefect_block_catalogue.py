"""Writes schema/prefect_blocks.json: the block types and schemas a fresh Prefect server
registers when it starts, as its API answers them (data, read over HTTP; no Prefect code).

    .venv/bin/python tools/prefect_block_catalogue.py [--url http://127.0.0.1:4200/api]
        [--prefect /work/prefect-venv/bin/python] [--out schema/prefect_blocks.json]

Without --url it starts `prefect server start` on a free port with an empty PREFECT_HOME,
reads it and stops it. Run it again when the Prefect version runlog follows changes; the file is
checked in (runlog registers its contents at start, schema/prefect_blocks.py).

The file holds ``block_types`` (Prefect's order: by name) without ids or times, and
``block_schemas`` oldest first (Prefect answers newest first, so registering them in the file's
order keeps its order), each naming its type by ``block_type_slug`` instead of an id.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
PAGE = 200
TYPE_KEYS = ("name", "slug", "logo_url", "documentation_url", "description", "code_example", "is_protected")
SCHEMA_KEYS = ("checksum", "fields", "capabilities", "version")


def _pages(http: httpx.Client, path: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        response = http.post(path, json={"offset": len(found), "limit": PAGE})
        response.raise_for_status()
        page = response.json()
        found.extend(page)
        if len(page) < PAGE:
            return found


def catalogue(url: str) -> dict[str, Any]:
    with httpx.Client(base_url=url, timeout=60) as http:
        types = _pages(http, "/block_types/filter")
        schemas = _pages(http, "/block_schemas/filter")
    slugs = {t["id"]: t["slug"] for t in types}
    return {
        "block_types": [{key: t[key] for key in TYPE_KEYS} for t in types],
        "block_schemas": [
            {"block_type_slug": slugs[s["block_type_id"]], **{key: s[key] for key in SCHEMA_KEYS}}
            for s in reversed(schemas)
        ],
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def from_fresh_server(prefect_python: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as home:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RUNLOG_"))} | {
            "PREFECT_HOME": home, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
            "PREFECT_SERVER_UI_ENABLED": "false",
        }
        proc = subprocess.Popen(
            [prefect_python, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}/api"
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    if httpx.get(url + "/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"Prefect's server did not start (exit {proc.poll()})")
                time.sleep(0.3)
            return catalogue(url)
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a fresh Prefect server's API URL (else one is started)")
    parser.add_argument("--prefect", default="/work/prefect-venv/bin/python", help="python with prefect installed")
    parser.add_argument("--out", type=Path, default=ROOT / "schema" / "prefect_blocks.json")
    args = parser.parse_args()
    data = catalogue(args.url) if args.url else from_fresh_server(args.prefect)
    args.out.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    print(f"{args.out}: {len(data['block_types'])} block types, {len(data['block_schemas'])} block schemas")


if __name__ == "__main__":
    main()
