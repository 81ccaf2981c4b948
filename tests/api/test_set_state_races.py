"""Concurrent set_state calls on one run, over a real socket on both backends.

set_state decides against the run's view and appends with the view's version as the expected
one, so of several transitions decided from the same prior state only one is written; the
others are decided again against the state that won. The history stays a chain: contiguous
stream versions, each written state decided from the state written just before it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from runlog.api import keys
from runlog.commands import flow_runs as flow_run_commands
from runlog.commands import task_runs as task_run_commands
from runlog.schema import events as catalogue

from ..servers import Server, serve


@pytest.fixture
async def server(tmp_path, store_url: str) -> AsyncIterator[Server]:
    async with serve({"RUNLOG_HOME": str(tmp_path), "RUNLOG_DATABASE_URL": store_url}) as running:
        yield running


def hold_appends_until(server: Server, stream_id: str, parties: int) -> None:
    """Make the first ``parties`` appends to ``stream_id`` wait for each other.

    Each set_state reads the run and decides before it appends, so when the appends are
    released together every one of them was decided from the same prior state: the race is
    certain, not left to timing. Later appends (the re-decisions) pass straight through.
    """
    store = server.app[keys.STORE]
    barrier = asyncio.Barrier(parties)
    append = store.append
    held = 0

    async def racing_append(stream: str, events: Sequence[Any], expected_version: int | None = None):  # type: ignore[no-untyped-def]
        nonlocal held
        if stream == stream_id and held < parties:
            held += 1
            await asyncio.wait_for(barrier.wait(), 30)
        return await append(stream, events, expected_version)

    store.append = racing_append  # type: ignore[method-assign]


async def new_flow_run(server: Server, state: dict[str, Any]) -> dict:
    status, flow = await server.request("POST", "/flows/", json={"name": f"race-{uuid.uuid4().hex[:8]}"})
    assert status == 201, flow
    status, run = await server.request("POST", "/flow_runs/", json={"flow_id": flow["id"], "state": state})
    assert status == 201, run
    return run


async def set_state(server: Server, kind: str, run_id: str, state: dict[str, Any]) -> tuple[int, dict]:
    status, answer = await server.request("POST", f"/{kind}/{run_id}/set_state", json={"state": state})
    assert isinstance(answer, dict), (status, answer)
    return status, answer


async def history(server: Server, stream_id: str) -> list[catalogue.State]:
    """The states written to a run's stream, checked to form one chain.

    Versions are contiguous from 1, and each state change after the first was decided from
    the state written just before it: no two states were decided from the same prior state.
    """
    store = server.app[keys.STORE]
    records = [record async for record in store.read_stream(stream_id)]
    assert [r.version for r in records] == list(range(1, len(records) + 1))
    states: list[catalogue.State] = []
    for record in records:
        event = catalogue.decode(record.data)
        if not isinstance(event, (catalogue.FlowRunStateChanged, catalogue.TaskRunStateChanged)):
            continue
        if states:
            assert event.initial_state_type == states[-1].type, (
                f"{event.state.type} was decided from {event.initial_state_type}, "
                f"but the state before it is {states[-1].type}"
            )
        states.append(event.state)
    assert len({s.id for s in states}) == len(states)
    return states


def accepted(outcomes: list[tuple[int, dict]]) -> list[dict]:
    return [answer for status, answer in outcomes if status == 201 and answer["status"] == "ACCEPT"]


@pytest.mark.parametrize("workers", [2, 20])
async def test_workers_submitting_one_scheduled_run_only_one_moves_it_to_pending(server, workers: int) -> None:
    """Prefect's workers race to submit a scheduled run: the first PENDING wins, the rest abort."""
    run = await new_flow_run(server, {"type": "SCHEDULED", "timestamp": datetime.now(UTC).isoformat()})
    stream = flow_run_commands.stream_of(uuid.UUID(run["id"]))
    hold_appends_until(server, stream, workers)

    outcomes = await asyncio.gather(
        *(set_state(server, "flow_runs", run["id"], {"type": "PENDING", "name": "Pending"}) for _ in range(workers))
    )

    (winner,) = accepted(outcomes)
    losers = [answer for status, answer in outcomes if answer is not winner]
    assert len(losers) == workers - 1
    for answer in losers:
        assert answer["status"] == "ABORT", answer
        assert "PENDING" in answer["details"]["reason"]
        assert answer["state"]["id"] == winner["state"]["id"]  # they are shown the state that won
    states = await history(server, stream)
    assert [s.type.value for s in states] == ["SCHEDULED", "PENDING"]
    assert str(states[-1].id) == winner["state"]["id"]
    status, api_history = await server.request("GET", f"/flow_run_states/?flow_run_id={run['id']}")
    assert status == 200 and [s["id"] for s in api_history] == [str(s.id) for s in states]


@pytest.mark.parametrize("workers", [2, 20])
async def test_racing_terminal_states_from_running_only_one_is_decided_from_running(server, workers: int) -> None:
    """COMPLETED and FAILED proposed at once from RUNNING: one of them leaves RUNNING.

    Every other proposal is decided again against the terminal state that won. Prefect's rules
    let a run without a persisted result move from one terminal state to another, so a
    re-decided proposal may still be accepted, but as a transition from that terminal state,
    never as a second one out of RUNNING. A proposal that keeps losing the race for the run's
    stream (runlog.commands.executor.MAX_ATTEMPTS times) gets a 503 with Retry-After, which the
    Prefect client retries; nothing is written for it.
    """
    run = await new_flow_run(server, {"type": "PENDING"})
    status, answer = await set_state(server, "flow_runs", run["id"], {"type": "RUNNING"})
    assert status == 201 and answer["status"] == "ACCEPT", answer
    stream = flow_run_commands.stream_of(uuid.UUID(run["id"]))
    hold_appends_until(server, stream, workers)

    proposals = [{"type": "COMPLETED" if n % 2 == 0 else "FAILED"} for n in range(workers)]
    outcomes = await asyncio.gather(*(set_state(server, "flow_runs", run["id"], p) for p in proposals))

    assert all(status in (201, 503) for status, _ in outcomes), outcomes
    states = await history(server, stream)
    assert [s.type.value for s in states[:2]] == ["PENDING", "RUNNING"]
    terminal = states[2:]
    assert terminal and all(s.type.value in ("COMPLETED", "FAILED") for s in terminal)
    # Only one state was decided from RUNNING: the chain check in history() makes every later
    # one a transition from the terminal state before it.
    written = {str(s.id) for s in terminal}
    acknowledged = [answer["state"]["id"] for answer in accepted(outcomes)]
    assert sorted(acknowledged) == sorted(written), "every accepted transition is written, and only those"
    if workers == 2:
        assert len(terminal) == 2  # two rounds at most: nobody can lose MAX_DECISIONS times
    status, read = await server.request("GET", f"/flow_runs/{run['id']}")
    assert status == 200 and read["state_id"] == str(terminal[-1].id)


async def test_racing_task_run_transitions_form_one_chain(server) -> None:
    """The same holds for a task run's stream: one of two racing RUNNING proposals leaves PENDING."""
    run = await new_flow_run(server, {"type": "PENDING"})
    status, answer = await set_state(server, "flow_runs", run["id"], {"type": "RUNNING"})
    assert status == 201, answer
    status, task = await server.request(
        "POST", "/task_runs/", json={"task_key": "k", "dynamic_key": "0", "flow_run_id": run["id"]}
    )
    assert status == 201 and task["state_type"] == "PENDING", task
    stream = task_run_commands.stream_of(uuid.UUID(task["id"]))
    hold_appends_until(server, stream, 2)

    outcomes = await asyncio.gather(
        *(set_state(server, "task_runs", task["id"], {"type": "RUNNING"}) for _ in range(2))
    )

    states = await history(server, stream)
    assert states[0].type.value == "PENDING" and states[1].type.value == "RUNNING"
    assert sorted(a["state"]["id"] for a in accepted(outcomes)) == sorted(str(s.id) for s in states[1:])
