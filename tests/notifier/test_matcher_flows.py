"""The matcher reads a run's flow once for a burst of firings, not at every one, and again once
a flow changed (a record of a flow's stream passed): the message shows the flow as it is."""

from __future__ import annotations

from runlog.commands import automations, flows
from runlog.commands.encryption import Keyring
from runlog.projections import flows as flow_reads
from runlog.schema.events import StateType

from .test_actions import a_run_in, on_states
from .test_block_channels import _document
from .test_matcher import matcher_for, scheduled


async def test_a_flow_is_read_once_for_many_firings_and_again_after_it_changed(store, clock, monkeypatch) -> None:
    cipher = await Keyring().cipher(store)
    channel = await _document(store, cipher, "slack-webhook", {"url": "https://hooks.example/T/B/x"}, "ops")
    actions = [{"type": "send-notification", "block_document_id": str(channel),
                "body": "{{ flow_run.name }} of {{ flow.name }} tagged {{ flow.tags | join(',') }}"}]
    await automations.create(store, on_states(["Failed"], actions), clock=clock)
    reads: list[object] = []
    real = flow_reads.get

    async def counted(store_, flow_id):
        reads.append(flow_id)
        return await real(store_, flow_id)

    monkeypatch.setattr(flow_reads, "get", counted)
    matcher = matcher_for(store, clock)
    for name in ("first", "second", "third"):
        await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name=name)
        assert await matcher.step(clock()) == 1
    assert len(reads) == 1

    flow_id = reads[0]
    assert await flows.update(store, flow_id, {"tags": ["gold"]}, clock=clock)
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="fourth")
    assert await matcher.step(clock()) == 1
    assert len(reads) == 2
    bodies = sorted(d.scheduled.body for d in await scheduled(store))
    assert bodies == ["first of etl tagged ", "fourth of etl tagged gold", "second of etl tagged ",
                      "third of etl tagged "]
