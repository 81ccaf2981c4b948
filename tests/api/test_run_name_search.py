"""A flow run name like_ (Prefect's case-insensitive partial match; runlog matches the value
literally) answers the same runs on both backends, whichever index serves it: pg_trgm on
PostgreSQL (migration 0030), the FTS5 trigram table on SQLite for 3 or more characters
(migration 0035), every name read for fewer."""

from __future__ import annotations

from typing import Any

import pytest

from ..servers import serve

NAMES = [
    "Café-Über-Nacht", "café-über-nacht", "КОТ-отчёт", "кот-ОТЧЁТ", "Σίσυφος-run",
    "50%_off", "50xyoff", "5_%off", 'say "hi"', "a\\b-run", "ab", "AB", "jolly-mellow", "JOLLY-MELLOW-2",
]
# (like_, the names it matches on both backends)
CASES: list[tuple[str, set[str]]] = [
    ("CAFÉ-ÜBER", {"Café-Über-Nacht", "café-über-nacht"}),  # non-ASCII letters fold, both ways
    ("über", {"Café-Über-Nacht", "café-über-nacht"}),
    ("кот-отч", {"КОТ-отчёт", "кот-ОТЧЁТ"}),
    ("ΣΊΣΥΦ", {"Σίσυφος-run"}),
    ("%_o", {"50%_off"}),  # % and _ are the characters themselves, not wildcards
    ("0%", {"50%_off"}),
    ("_%", {"5_%off"}),
    ("%", {"50%_off", "5_%off"}),
    ('"hi"', {'say "hi"'}),  # FTS5's own quote, doubled inside the phrase
    ("a\\b", {"a\\b-run"}),  # LIKE's escape character, literal too
    ("ab", {"ab", "AB"}),  # shorter than a trigram: every name read, ASCII folded
    ("y-m", {"jolly-mellow", "JOLLY-MELLOW-2"}),
    ("lly-mellow-", {"JOLLY-MELLOW-2"}),
    ("mellow-3", set()),
    ("fé-Üb", {"Café-Über-Nacht", "café-über-nacht"}),
]


@pytest.fixture
async def runs(tmp_path, store_url):
    async with serve({"RUNLOG_HOME": str(tmp_path), "RUNLOG_DATABASE_URL": store_url}) as server:
        async def post(path: str, body: Any, expect: int = 200) -> Any:
            status, answer = await server.request("POST", path, json=body)
            assert status == expect, (path, body, status, answer)
            return answer

        flow = (await post("/flows/", {"name": "names"}, expect=201))["id"]
        ids = {}
        for name in NAMES:
            ids[(await post("/flow_runs/", {"flow_id": flow, "name": name}, expect=201))["id"]] = name
        yield server, post, ids


async def test_name_like_matches_the_same_runs_on_both_backends(runs):
    """Every case in one server (one per case took minutes): the same names on either backend."""
    _, post, ids = runs
    for like, expected in CASES:
        body = {"flow_runs": {"name": {"like_": like}}}
        assert {ids[r["id"]] for r in await post("/flow_runs/filter", body)} == expected, like
        assert await post("/flow_runs/count", body) == len(expected), like


async def test_name_like_follows_renames_and_deletions_through_the_trigram_index(runs):
    server, post, ids = runs
    by_name = {name: run_id for run_id, name in ids.items()}
    status, _ = await server.request("PATCH", f"/flow_runs/{by_name['jolly-mellow']}", json={"name": "Grün-Zeit"})
    assert status == 204
    status, _ = await server.request("DELETE", f"/flow_runs/{by_name['JOLLY-MELLOW-2']}")
    assert status == 204

    async def matching(like: str) -> set[str]:
        body = {"flow_runs": {"name": {"like_": like}}}
        found = {ids[r["id"]] for r in await post("/flow_runs/filter", body)}
        assert await post("/flow_runs/count", body) == len(found)
        return found

    assert await matching("mellow") == set()
    assert await matching("GRÜN-") == {"jolly-mellow"}  # (as first named)
    assert await matching("50%") == {"50%_off"}
