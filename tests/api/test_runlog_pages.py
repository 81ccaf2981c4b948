"""runlog's own pages (/runlog/...) as HTML over a real socket, on both backends: each shows the
data stored, filters and pages as it says, and the log's websocket sends new events as rows.
The browser tests (tests/ui/test_runlog_pages.py) drive the same pages in Chromium."""

from __future__ import annotations

import re
import uuid
from html import unescape

import httpx
import msgspec
import pytest

from runlog.api import keys
from runlog.commands import deliveries as delivery_commands
from runlog.eventstore import NewEvent
from runlog.notifier import rules

from ..servers import runlog_server, server_env
from .channels import make_channel


async def get_page(server, path: str, *, status: int = 200) -> str:
    origin = server.base.removesuffix("/api")
    async with server.session.get(origin + path, allow_redirects=False) as response:
        text = await response.text()
        assert response.status == status, text[:2000]
        if status == 200:
            assert response.content_type == "text/html", response.content_type
        return text


def text_of(html: str) -> str:
    """The page's text, tags dropped and entities decoded, whitespace collapsed."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def positions_in(html: str) -> list[int]:
    return [int(p) for p in re.findall(r'<tr id="event-(\d+)"', html)]


async def new_run(server, name: str = "brisk-otter") -> dict:
    status, flow = await server.request("POST", "/flows/", json={"name": "etl"})
    assert status in (200, 201), flow
    status, run = await server.request("POST", "/flow_runs/", json={"flow_id": flow["id"], "name": name})
    assert status == 201, run
    return run


async def set_state(server, run_id: str, state: str) -> None:
    status, answer = await server.request("POST", f"/flow_runs/{run_id}/set_state", json={"state": {"type": state}})
    assert status in (200, 201) and answer["status"] == "ACCEPT", answer


async def head(server) -> int:
    return await server.app[keys.STORE].head()


async def test_the_index_links_every_page_and_what_can_be_travelled_through(server) -> None:
    run = await new_run(server, "gentle-heron")
    await server.request("POST", "/work_pools/", json={"name": "pool-a", "type": "process"})
    await server.request("POST", "/v2/concurrency_limits/", json={"name": "db", "limit": 2})
    html = await get_page(server, "/runlog/")
    for href in ("/runlog/log", "/runlog/notifications", "/runlog/projections", f"/runlog/time-travel/flow-run/{run['id']}",
                 "/runlog/time-travel/work-pool/pool-a"):
        assert f'href="{href}"' in html, href
    assert 'name="viewport"' in html and '<html lang="en">' in html
    assert "gentle-heron" in text_of(html) and "db (2 slots)" in text_of(html)
    origin = server.base.removesuffix("/api")
    async with server.session.get(origin + "/runlog", allow_redirects=False) as response:
        assert response.status == 302 and response.headers["Location"] == "/runlog/"


async def test_the_log_shows_events_newest_first_with_a_summary_and_the_payload_as_json(server) -> None:
    run = await new_run(server)
    await set_state(server, run["id"], "RUNNING")
    html = await get_page(server, "/runlog/log")
    shown = positions_in(html)
    assert shown[0] == await head(server) and shown == sorted(shown, reverse=True)
    text = text_of(html)
    assert f"flow-run-{run['id']}" in text and "flow_run.state_changed" in text
    assert "→ Running" in text  # the summary of the state change
    # A run's event links to the run as it was then.
    assert f'href="/runlog/time-travel/flow-run/{run["id"]}?at={shown[0]}"' in html
    # The payload, as JSON, inside the row's disclosure.
    row = html[html.index(f'<tr id="event-{shown[0]}"'):]
    payload = unescape(row[row.index("<pre><code>") + len("<pre><code>"):row.index("</code></pre>")])
    assert msgspec.json.decode(payload)["flow_run_id"] == run["id"]
    assert msgspec.json.decode(payload)["state"]["type"] == "RUNNING"


async def test_the_log_filters_by_stream_and_type_and_pages_back_by_position(server) -> None:
    first, second = await new_run(server, "one"), await new_run(server, "two")
    for state in ("RUNNING", "COMPLETED"):
        await set_state(server, first["id"], state)
    await set_state(server, second["id"], "RUNNING")
    stream = f"flow-run-{first['id']}"

    store = server.app[keys.STORE]
    in_stream = [e.position async for e in store.read_stream(stream)][::-1]
    changes = [e.position async for e in store.read_all() if e.type == "flow_run.state_changed"][::-1]
    assert len(in_stream) >= 3 and len(changes) >= 3

    html = await get_page(server, f"/runlog/log?stream={stream}")
    assert set(re.findall(r"flow-run-[0-9a-f-]{36}", text_of(html))) == {stream}
    assert positions_in(html) == in_stream

    html = await get_page(server, "/runlog/log?type=flow_run.state_changed")
    assert positions_in(html) == changes and "flow_run.created" not in text_of(html)

    html = await get_page(server, f"/runlog/log?stream={stream}&limit=2")
    assert positions_in(html) == in_stream[:2]
    older = unescape(re.search(r'<a href="([^"]+)" rel="next">', html)[1])
    assert f"before={in_stream[1]}" in older
    html = await get_page(server, older)
    assert positions_in(html) == in_stream[2:4]
    if len(in_stream) <= 4:
        assert 'rel="next"' not in html or len(in_stream) == 4

    await get_page(server, "/runlog/log?before=zero", status=422)
    await get_page(server, "/runlog/log?limit=100000", status=422)


async def test_the_live_log_sends_each_new_matching_event_as_a_rendered_row(server) -> None:
    watched, other = await new_run(server, "watched"), await new_run(server, "other")
    after = await head(server)
    origin = server.base.removesuffix("/api").replace("http", "ws", 1)
    url = f"{origin}/runlog/log/live?after={after}&stream=flow-run-{watched['id']}"
    async with server.session.ws_connect(url) as ws:
        await set_state(server, other["id"], "RUNNING")  # another stream: not sent
        await set_state(server, watched["id"], "RUNNING")
        message = await ws.receive_json(timeout=60)
    assert message["position"] == await head(server)
    assert f'<tr id="event-{message["position"]}"' in message["html"]
    assert "→ Running" in text_of(message["html"]) and f"flow-run-{watched['id']}" in message["html"]
    async with server.session.get(f"{server.base.removesuffix('/api')}/runlog/log/live") as response:
        assert response.status == 400  # a plain GET: not a websocket


async def test_time_travel_shows_a_run_as_it_was_at_each_of_its_events(server, clock) -> None:
    run = await new_run(server)
    created = await head(server)
    await set_state(server, run["id"], "RUNNING")
    running = await head(server)
    clock.advance(90)
    await set_state(server, run["id"], "COMPLETED")
    path = f"/runlog/time-travel/flow-run/{run['id']}"

    stream = [e.position async for e in server.app[keys.STORE].read_stream(f"flow-run-{run['id']}")]
    assert created in stream and running in stream and stream[-1] == await head(server)

    now = await get_page(server, path)
    assert 'type="range"' in now and f'data-positions="{",".join(map(str, stream))}"' in now
    assert re.search(r'id="view-state"[^>]*>Completed<', now)
    assert "Total run time 90.0 s" in text_of(now)
    assert f"position {running} flow_run.state_changed → Running" in text_of(now)  # its events, summarized
    then = await get_page(server, f"{path}?at={running}")
    assert re.search(r'id="view-state"[^>]*>Running<', then) and re.search(r'id="view-run-count">1<', then)
    first = await get_page(server, f"{path}?at={created}&fragment=1")
    assert first.lstrip().startswith('<section class="moment"') and "<html" not in first  # only the view
    assert re.search(r'id="view-state"[^>]*>Pending<', first) and re.search(r'id="view-run-count">0<', first)

    await get_page(server, f"/runlog/time-travel/flow-run/{uuid.uuid4()}", status=404)
    await get_page(server, f"{path}?at=yesterday-ish", status=422)


async def test_time_travel_shows_a_work_pool_and_a_concurrency_limit_then(server) -> None:
    await server.request("POST", "/work_pools/", json={"name": "p", "type": "process"})
    created = await head(server)
    await server.request("PATCH", "/work_pools/p", json={"is_paused": True})
    html = await get_page(server, f"/runlog/time-travel/work-pool/p?at={created}")
    assert "Paused no" in text_of(html) and "default" in text_of(html)  # its default queue
    assert "Paused yes" in text_of(await get_page(server, "/runlog/time-travel/work-pool/p"))
    await get_page(server, "/runlog/time-travel/work-pool/nope", status=404)

    status, made = await server.request("POST", "/v2/concurrency_limits/", json={"name": "db", "limit": 2})
    assert status == 201, made
    made_at = await head(server)
    status, _ = await server.request("POST", "/v2/concurrency_limits/increment-with-lease", json={
        "names": ["db"], "slots": 1, "mode": "concurrency", "lease_duration": 300})
    assert status == 200
    by_id = await get_page(server, f"/runlog/time-travel/concurrency-limit/{made['id']}")
    assert re.search(r'id="view-slots">1<', by_id)
    by_name = await get_page(server, f"/runlog/time-travel/concurrency-limit/db?at={made_at}")
    assert re.search(r'id="view-slots">0<', by_name) and "No leases held." in by_name


@pytest.fixture
def env(tmp_path, store_url: str) -> dict[str, str]:
    # The test records deliveries itself: the server's own dispatcher would race it.
    return {"RUNLOG_HOME": str(tmp_path), "RUNLOG_DATABASE_URL": store_url, "RUNLOG_NOTIFIER_ENABLED": "false"}


async def test_the_notifications_page_shows_rules_channels_and_deliveries_with_a_retry_button(
    server, clock, store_url,
) -> None:
    store = server.app[keys.STORE]
    channel = uuid.UUID(await make_channel(server, store_url, "ops-slack"))
    rule = rules.Rule(name="etl failures", channel_id=channel, states=["Failed"])
    status, automation = await server.request("POST", "/automations/", json=rules.definition_of(rule))
    assert status == 201, automation
    paused = rules.Rule(name="quiet one", channel_id=channel, enabled=False)
    status, _ = await server.request("POST", "/automations/", json=rules.definition_of(paused))
    assert status == 201

    def scheduled(body: str):  # type: ignore[no-untyped-def]
        return delivery_commands.schedule(
            store, rule_id=uuid.UUID(automation["id"]), rule_name="etl failures", channel_id=channel,
            event_id=uuid.uuid4(), subject="Flow run failed", body=body, clock=clock,
        )

    sent, _ = await scheduled("sent one")
    await delivery_commands.record_attempt(store, sent, delivery_commands.AttemptRecord(
        started=clock(), finished=clock(), outcome="sent", status_code=200, excerpt="ok"), clock=clock)
    clock.advance(1)
    gone, _ = await scheduled("gone one")
    await delivery_commands.record_attempt(store, gone, delivery_commands.AttemptRecord(
        started=clock(), finished=clock(), outcome="gone", status_code=410, excerpt="no such hook"), clock=clock)

    html = await get_page(server, "/runlog/notifications")
    text = text_of(html)
    assert "etl failures Failed" in text and "ops-slack" in text
    assert re.search(r"quiet one.*?paused", text)
    assert "failing since" in text  # the channel's last delivery found it gone
    assert f'data-retry="{gone.id}"' in html and f'data-retry="{sent.id}"' not in html
    assert "410" in text and "no such hook" in text

    dead_only = await get_page(server, "/runlog/notifications?status=dead")
    assert f'id="delivery-{gone.id}"' in dead_only and f'id="delivery-{sent.id}"' not in dead_only
    await get_page(server, "/runlog/notifications?status=lost", status=422)


async def test_the_projections_page_and_the_verify_endpoint_it_calls(server) -> None:
    run = await new_run(server)
    await set_state(server, run["id"], "RUNNING")
    html = await get_page(server, "/runlog/projections")
    text = text_of(html)
    assert "runs inline" in text and 'id="verify"' in html
    assert re.search(rf"at log position {await head(server)}\b", text)
    status, answer = await server.request("POST", "/admin/projections/verify")
    assert status == 200 and answer["equal"] is True and answer["head"] == await head(server)
    assert any(t["table"] == "flow_runs" and t["live"] == 1 == t["rebuilt"] for t in answer["tables"])

    assert "never (built as the log was appended)" in text
    async with server.session.post(server.base + "/admin/projections/rebuild", json={"names": ["runs"]}) as response:
        assert response.status == 200
        await response.read()
    rows = re.findall(r"<tr>.*?</tr>", await get_page(server, "/runlog/projections"), re.S)
    runs_row = text_of(next(row for row in rows if "<td>runs</td>" in row))
    assert re.search(rf"\d+ events to position {await head(server)} in", runs_row), runs_row


async def test_the_pages_script_and_stylesheet_are_served_and_nothing_else(server) -> None:
    origin = server.base.removesuffix("/api")
    for name, kind in (("runlog.js", "text/javascript"), ("runlog.css", "text/css")):
        async with server.session.get(f"{origin}/runlog/static/{name}") as response:
            assert response.status == 200 and response.content_type == kind
            assert len(await response.read()) > 1000
    async with server.session.get(f"{origin}/runlog/static/..%2Fpages%2F__init__.py") as response:
        assert response.status == 404


async def test_an_unknown_page_under_runlog_is_a_404_not_prefects_ui(server) -> None:
    origin = server.base.removesuffix("/api")
    async with server.session.get(f"{origin}/runlog/nothing-here", headers={"Accept": "text/html"}) as response:
        assert response.status == 404


async def test_the_payload_of_an_event_this_runlog_cannot_read_is_shown_as_unreadable(server) -> None:
    store = server.app[keys.STORE]
    await store.append("mystery-1", [NewEvent(type="from.the.future", data=b"\x81\xa1x\x01", id=uuid.uuid4())])
    html = await get_page(server, "/runlog/log?stream=mystery-1")
    assert "a payload this runlog cannot read" in text_of(html) and "from.the.future" in html




def test_the_server_banner_links_the_pages_and_they_answer_there(tmp_path, sqlite_url) -> None:
    with runlog_server(server_env(tmp_path, sqlite_url), tmp_path / "server.log") as running:
        origin = running.url.removesuffix("/api")
        found = re.search(r"^runlog's pages .*: (http://\S+)$", running.output(), re.MULTILINE)
        assert found is not None and found[1] == f"{origin}/runlog/", running.output()
        page = httpx.get(found[1], timeout=30)
        assert page.status_code == 200 and "<h1>runlog</h1>" in page.text
        assert running.stop() == 0
