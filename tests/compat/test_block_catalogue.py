"""A new runlog's block catalogue is a new Prefect 3.8.8 server's: both servers are started
empty (Prefect's `prefect server start` on SQLite in its own PREFECT_HOME, runlog on each backend
in turn), and /block_types/filter and /block_schemas/filter answer the same types and schemas in
the same order, ids and times aside. The stock client then saves and loads built-in blocks
(Secret, SlackWebhook, LocalFileSystem, ...) against runlog's pre-registered types and schemas,
registering nothing new."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ..servers import runlog_server, server_env
from .test_blocks import client
from .test_history_vs_prefect import _client_env, _start_prefect, _stop
from .test_prefect_client import Runlog

pytestmark = pytest.mark.slow

SEEDED = "catalogue-s3cr3t-5521"
TIMES_AND_IDS = {"id", "created", "updated", "block_type_id"}


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory) -> Iterator[str]:
    proc, url = _start_prefect(tmp_path_factory.mktemp("prefect"))
    try:
        yield url
    finally:
        _stop(proc)


@pytest.fixture
def runlog(store_url, tmp_path) -> Iterator[Runlog]:
    env = server_env(tmp_path, store_url, RUNLOG_SERVER_BLOCKS_REGISTER_ON_START="true")
    with runlog_server(env, tmp_path / "server.log") as running:
        server = Runlog(running.url, _client_env() | {
            "PREFECT_API_URL": running.url, "PREFECT_HOME": str(tmp_path / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        })
        try:
            yield server
        finally:
            server.http.close()


def _plain(value: Any) -> Any:
    """An answer without ids and times (a schema's type too), a schema's capabilities sorted:
    Prefect lists a block's capabilities from a set of strings, so their order changes from one
    start of its server to the next (string hashing is randomised per process)."""
    if isinstance(value, list):
        return [_plain(item) for item in value]
    plain = {k: _plain(v) if k == "block_type" else v for k, v in value.items() if k not in TIMES_AND_IDS}
    if "capabilities" in plain:
        plain["capabilities"] = sorted(plain["capabilities"])
    return plain


def catalogue(url: str) -> tuple[list[dict], list[dict]]:
    with httpx.Client(base_url=url, timeout=60) as http:
        types = http.post("/block_types/filter", json={})
        schemas = http.post("/block_schemas/filter", json={})
    assert types.status_code == 200 and schemas.status_code == 200, (types.text, schemas.text)
    return types.json(), schemas.json()


def test_a_new_runlog_answers_the_block_catalogue_a_new_prefect_server_does(prefect_api, runlog) -> None:
    prefect_types, prefect_schemas = catalogue(prefect_api)
    runlog_types, runlog_schemas = catalogue(runlog.url)
    assert len(runlog_types) == len(prefect_types) == 54
    assert _plain(runlog_types) == _plain(prefect_types)
    assert len(runlog_schemas) == len(prefect_schemas) == 64
    assert _plain(runlog_schemas) == _plain(prefect_schemas)
    with httpx.Client(timeout=60) as http:
        capabilities = [http.get(f"{url}/block_capabilities/").json() for url in (prefect_api, runlog.url)]
    assert sorted(capabilities[0]) == capabilities[1]  # Prefect's in no set order, runlog's sorted


def test_the_stock_client_saves_and_loads_built_in_blocks_on_the_registered_schemas(runlog, tmp_path) -> None:
    types, schemas = catalogue(runlog.url)
    outcome = client(runlog, "save_and_load", SEEDED, str(tmp_path / "results"))
    assert outcome["secret"] == SEEDED and outcome["loaded"] == f"https://hooks.slack.com/services/{SEEDED}"
    assert outcome["read_back"] == "42"
    # The client found every type and schema it needed: nothing new, same ids.
    after_types, after_schemas = catalogue(runlog.url)
    assert [t["id"] for t in after_types] == [t["id"] for t in types]
    assert [s["id"] for s in after_schemas] == [s["id"] for s in schemas]
    secret_schema = next(s["id"] for s in schemas if s["block_type"]["slug"] == "secret")
    saved = runlog.get("/block_types/slug/secret/block_documents/name/api-key")
    assert saved["block_schema_id"] == secret_schema and saved["data"] == {"value": "********"}
    assert "secret/api-key" in runlog.prefect("block", "ls")
