"""Rules made with ``runlog notification create --resolve-on-completed``, on both backends: the
channels and rules are made by the real CLI on the test's database, the matcher and the
dispatcher run with a manual clock and send to real PagerDuty and Opsgenie stand-ins on
127.0.0.1. A run that failed and later completes has its alert resolved under the same key; a
rule without the option, and a run that never alerted, send no resolve; the resolve is found
from the log (a new matcher and dispatcher, a matcher rewound to the start) and sent once."""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager

import pytest

from runlog.commands import flow_runs
from runlog.commands.encryption import Keyring
from runlog.commands.orchestration import ProposedState
from runlog.eventstore import RowChanges
from runlog.notifier.dispatcher import Dispatcher
from runlog.notifier.sending import BlockChannels, ChannelSender
from runlog.projections import deliveries as model
from runlog.projections.checkpoints import CHECKPOINTS
from runlog.schema.events import StateType

from ..api import isolate_runlog_env
from ..api.cli_runner import run_cli
from .conftest import one_round
from .receiver import receiver
from .test_matcher import a_run_in, matcher_for

ACCEPTED_PD = (202, {"Content-Type": "application/json"}, b'{"status": "success", "dedup_key": "k"}')
ACCEPTED_OG = (202, {"Content-Type": "application/json"}, b'{"result": "Request will be processed", "requestId": "r1"}')


@pytest.fixture
def local(monkeypatch, tmp_path, store_url):
    """The runlog CLI works on the test's database (no RUNLOG_API_URL: in-process)."""
    isolate_runlog_env(monkeypatch, tmp_path)
    monkeypatch.setenv("RUNLOG_DATABASE_URL", store_url)


async def cli(*args: str) -> str:
    done = await asyncio.to_thread(run_cli, *args)
    assert done.exit_code == 0, done.output
    return done.stdout


@asynccontextmanager
async def stand_ins():
    async with receiver() as pagerduty, receiver() as opsgenie:
        pagerduty.default, opsgenie.default = ACCEPTED_PD, ACCEPTED_OG
        yield pagerduty, opsgenie


async def a_round(store, clock, pagerduty, opsgenie) -> None:
    """One matcher round and one dispatcher round, each by a new instance: nothing is carried
    in memory from one round to the next, as across a restart."""
    await matcher_for(store, clock).step(clock())
    dispatcher = Dispatcher(
        store, ChannelSender(base_urls={"pager-duty-webhook": pagerduty.url, "opsgenie-webhook": opsgenie.url}),
        BlockChannels(store, Keyring()), clock=clock, draw=lambda: 1.0,
    )
    try:
        await one_round(dispatcher, clock)
    finally:
        await dispatcher.aclose()


async def complete(store, clock, run_id) -> None:
    """The run is retried and completes, a minute later."""
    clock.advance(60)
    await flow_runs.set_state(store, run_id, ProposedState(type=StateType.RUNNING), force=True, clock=clock)
    await flow_runs.set_state(store, run_id, ProposedState(type=StateType.COMPLETED), clock=clock)


async def rules_and_channels() -> None:
    await cli("channel", "create", "pagerduty", "pd", "--integration-key", "pd-routing-key", "--api-key", "rest-key")
    await cli("channel", "create", "pagerduty", "pd-plain", "--integration-key", "plain-routing-key", "--api-key", "rest-key")
    await cli("channel", "create", "opsgenie", "og", "--apikey", "og-api-key")
    for channel, extra in (("pd", ["--resolve-on-completed"]), ("og", ["--resolve-on-completed"]), ("pd-plain", [])):
        await cli("notification", "create", "--state", "Failed", "--tag", "etl", "--channel", channel,
                  "--name", f"etl to {channel}", *extra)


def events_for(pagerduty, routing_key: str) -> list[dict]:
    return [seen.json() for seen in pagerduty.seen if seen.json()["routing_key"] == routing_key]


async def test_failed_then_completed_resolves_the_alert_under_its_key(local, store, clock):
    await rules_and_channels()
    async with stand_ins() as (pagerduty, opsgenie):
        failed = await a_run_in(store, clock, StateType.FAILED, tags=["etl"], name="flaky-otter")
        never_alerted = await a_run_in(store, clock, StateType.COMPLETED, tags=["etl"], name="steady-heron")
        await a_round(store, clock, pagerduty, opsgenie)

        [trigger] = events_for(pagerduty, "pd-routing-key")
        assert trigger["event_action"] == "trigger"
        [plain_trigger] = events_for(pagerduty, "plain-routing-key")
        [opened] = opsgenie.seen
        assert opened.path == "/v2/alerts" and opened.headers["Authorization"] == "GenieKey og-api-key"

        await complete(store, clock, failed)
        await a_round(store, clock, pagerduty, opsgenie)

        [_, resolve] = events_for(pagerduty, "pd-routing-key")
        assert resolve["event_action"] == "resolve" and resolve["dedup_key"] == trigger["dedup_key"]
        assert events_for(pagerduty, "plain-routing-key") == [plain_trigger], "the rule without the option resolves nothing"
        [_, closed] = opsgenie.seen
        assert closed.method == "POST" and closed.query == {"identifierType": "alias"}
        assert closed.path == f"/v2/alerts/{opened.json()['alias']}/close"
        assert "entered state `Completed`" in closed.json()["note"]

        # A restart that lost the checkpoint: the whole log matched again resolves nothing twice.
        rewind = RowChanges()
        rewind.upsert(CHECKPOINTS, ("notifier-matcher", 0))
        await store.write_tables(rewind)
        await a_round(store, clock, pagerduty, opsgenie)
        assert len(pagerduty.seen) == 3 and len(opsgenie.seen) == 2

    async with store.reading() as tx:
        of_failed = await model.of_flow_run(tx, failed)
        assert await model.of_flow_run(tx, never_alerted) == [], "a run that never alerted sends nothing"
    resolves = [d for d in of_failed if d.scheduled.resolve]
    assert len(of_failed) == 5 and len(resolves) == 2
    assert all(d.status == model.SENT for d in of_failed)
    originals = {d.id: d for d in of_failed if not d.scheduled.resolve}
    assert all(originals[d.scheduled.resolves].scheduled.channel_id == d.scheduled.channel_id for d in resolves)
    shown = json.loads(await cli("notification", "deliveries", "show", str(resolves[0].id), "-o", "json"))
    assert shown["resolve"] is True and shown["resolves"] == str(resolves[0].scheduled.resolves)
    assert "Resolves the alert of delivery" in await cli("notification", "deliveries", "show", str(resolves[0].id))


async def test_a_resolve_waits_for_its_alert_to_be_sent_first(local, store, clock):
    await rules_and_channels()
    async with stand_ins() as (pagerduty, opsgenie):
        # PagerDuty is down for the first trigger; the run completes before the alert is out.
        pagerduty.script((500, {}, b"down"), (500, {}, b"down"))
        failed = await a_run_in(store, clock, StateType.FAILED, tags=["etl"], name="late-alert")
        await complete(store, clock, failed)
        await a_round(store, clock, pagerduty, opsgenie)
        actions = [(e["routing_key"], e["event_action"]) for e in map(lambda s: s.json(), pagerduty.seen)]
        assert ("pd-routing-key", "resolve") not in actions, "held back while the alert is unsent"

        clock.advance(5)  # the trigger's first backoff: it is sent now, the resolve right after it
        await a_round(store, clock, pagerduty, opsgenie)
        await a_round(store, clock, pagerduty, opsgenie)

    mine = [e["event_action"] for e in events_for(pagerduty, "pd-routing-key")]
    assert mine[-2:] == ["trigger", "resolve"] and mine.count("resolve") == 1
    # Opsgenie was up all along: its alert was opened first and closed after.
    assert [s.path.rsplit("/", 1)[-1] for s in opsgenie.seen] == ["alerts", "close"]


async def test_the_option_is_shown_kept_by_edits_and_refused_for_a_channel_that_cannot_resolve(local, store):
    await cli("channel", "create", "pagerduty", "pd", "--integration-key", "k", "--api-key", "rest-key")
    await cli("channel", "create", "slack", "ops", "--url", "https://hooks.slack.com/services/T/B/X")
    await cli("notification", "create", "--state", "Failed", "--channel", "pd", "--name", "pages",
              "--resolve-on-completed")

    [rule] = json.loads(await cli("notification", "ls", "-o", "json"))
    assert rule["tags"] == ["runlog.resolve-on-completed"]
    table = await cli("notification", "ls")
    assert "│ yes" in table
    await cli("notification", "edit", "pages", "--state", "Crashed")  # another part edited: the option stays
    assert "resolve       yes\n" in await cli("notification", "inspect", "pages")

    refused = await asyncio.to_thread(run_cli, "notification", "edit", "pages", "--channel", "ops")
    assert refused.exit_code == 1
    assert "channel 'ops' is a slack-webhook channel; only PagerDuty and Opsgenie alerts can be resolved" in refused.stderr

    await cli("notification", "edit", "pages", "--no-resolve-on-completed", "--channel", "ops")
    [rule] = json.loads(await cli("notification", "ls", "-o", "json"))
    assert rule["tags"] == []
    assert "resolve       \n" in await cli("notification", "inspect", "pages")
    assert "│ yes" not in await cli("notification", "ls")


async def test_a_completion_resolves_only_the_alerts_raised_before_it(local, store, clock):
    await rules_and_channels()
    run_id = await a_run_in(store, clock, StateType.FAILED, tags=["etl"], name="twice-failed")
    await complete(store, clock, run_id)
    clock.advance(60)  # run again, and fail again: that alert stays open
    await flow_runs.set_state(store, run_id, ProposedState(type=StateType.RUNNING), force=True, clock=clock)
    await flow_runs.set_state(store, run_id, ProposedState(type=StateType.FAILED), clock=clock)

    async def resolved() -> tuple[list, list]:
        async with store.reading() as tx:
            found = await model.of_flow_run(tx, run_id)
        alerts = [d for d in found if not d.scheduled.resolve and d.scheduled.rule_name != "etl to pd-plain"]
        return alerts, [d.scheduled.resolves for d in found if d.scheduled.resolve]

    await matcher_for(store, clock).step(clock())  # the whole history in one page
    alerts, resolves = await resolved()
    assert len(alerts) == 4  # pd and og, for each failure
    first_alerts = sorted(alerts, key=lambda d: d.scheduled.occurred)[:2]
    assert sorted(resolves) == sorted(d.id for d in first_alerts)

    # Matched again from the start (the second failure's alerts now exist when the completion
    # is reached): still only the first failure's alerts are resolved, once each.
    rewind = RowChanges()
    rewind.upsert(CHECKPOINTS, ("notifier-matcher", 0))
    await store.write_tables(rewind)
    assert await matcher_for(store, clock).step(clock()) == 0
    assert sorted((await resolved())[1]) == sorted(d.id for d in first_alerts)
