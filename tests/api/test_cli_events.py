"""``runlog events ls / export / import / tail`` on both backends."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from uuid import uuid4

import pytest

from runlog.eventstore import NewEvent, open_store

from . import isolate_runlog_env
from ..terminal import run_on_terminal
from .cli_runner import run_cli


@pytest.fixture
def database(monkeypatch, tmp_path, store_url):
    isolate_runlog_env(monkeypatch, tmp_path)
    monkeypatch.setenv("RUNLOG_DATABASE_URL", store_url)
    return store_url


def seed(url: str, events: list[tuple[str, bytes]]) -> None:
    async def run() -> None:
        async with open_store(url) as store:
            for stream, data in events:
                await store.append(stream, [NewEvent(type="test.seeded", data=data, id=uuid4())])

    asyncio.run(run())


def test_ls_lists_events_filtered_by_stream_after_and_limit(database):
    assert "No events." in run_cli("events", "ls").output
    seed(database, [("alpha", b"{}"), ("beta", b"{}"), ("alpha", b"{}")])
    result = run_cli("events", "ls")
    assert result.exit_code == 0
    assert result.output.count("test.seeded") == 3
    only_beta = run_cli("events", "ls", "--stream", "beta").output
    assert "beta" in only_beta and "alpha" not in only_beta
    assert run_cli("events", "ls", "--after", "1", "--limit", "1").output.count("test.seeded") == 1
    assert run_cli("events", "ls", "--limit", "0").exit_code == 2  # click's usage error


def test_ls_says_when_more_events_follow_and_which_command_shows_them(database):
    seed(database, [("alpha", b"{}")] * 55 + [("beta", b"{}")] * 3)
    first = run_cli("events", "ls")
    assert first.exit_code == 0
    assert first.stdout.count("test.seeded") == 50 and "│       50 │" in first.stdout
    assert "Showing the first 50 events; more follow. Next: runlog events ls --after 50 " in first.stderr
    rest = run_cli("events", "ls", "--after", "50")
    assert rest.stdout.count("test.seeded") == 8 and "more follow" not in rest.output  # exactly the rest
    exactly = run_cli("events", "ls", "--limit", "58")
    assert exactly.stdout.count("test.seeded") == 58 and "more follow" not in exactly.output
    stream = run_cli("events", "ls", "--stream", "alpha", "--after", "10", "--limit", "20")
    assert stream.stdout.count("test.seeded") == 20
    assert "Showing the first 20 events; more follow. Next: runlog events ls --stream alpha --after 30 --limit 20" in stream.stderr


def test_export_then_import_elsewhere_copies_every_event_and_a_second_import_adds_nothing(
    database, tmp_path, monkeypatch
):
    seed(database, [("s1", b'{"n": 1}'), ("s2", b"\x00\xffbinary"), ("s1", b'"text"')])
    exported = tmp_path / "log.jsonl"
    result = run_cli("events", "export", str(exported))
    assert result.exit_code == 0 and "Exported 3 event(s)" in result.output
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert [line["position"] for line in lines] == [1, 2, 3]
    assert lines[0]["data"] == {"n": 1} and "data_base64" in lines[1]

    monkeypatch.setenv("RUNLOG_DATABASE_URL", f"sqlite:///{tmp_path}/copy.db")
    first = run_cli("events", "import", str(exported))
    assert first.exit_code == 0 and "Imported 3 event(s); 0 were already stored." in first.output
    second = run_cli("events", "import", str(exported))
    assert "Imported 0 event(s); 3 were already stored." in second.output

    copied = tmp_path / "copy.jsonl"
    run_cli("events", "export", str(copied))
    strip = lambda rows: [{k: v for k, v in r.items() if k != "recorded_at"} for r in rows]  # noqa: E731
    assert strip(json.loads(line) for line in copied.read_text().splitlines()) == strip(lines)


def test_export_to_stdout(database):
    seed(database, [("s", b"{}")])
    result = run_cli("events", "export")
    assert json.loads(result.stdout.splitlines()[0])["stream_id"] == "s"


def test_import_of_a_malformed_line_names_the_line_and_keeps_what_came_before(database, tmp_path):
    good = {"stream_id": "s", "id": str(uuid4()), "type": "t", "data": {}}
    log = {"record": "log", "id": str(uuid4()), "name": "n", "level": 20, "message": "m",
           "timestamp": "2024-05-01T00:00:00Z"}
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(log) + "\n" + '{"stream_id": 3}\n')
    result = run_cli("events", "import", str(path))
    assert result.exit_code == 1
    assert "Error: line 3: not an exported event" in result.output
    assert "the 1 event(s) and 1 log line(s) before it are stored" in result.output
    assert "Traceback" not in result.output
    assert run_cli("events", "ls").output.count("│ s ") == 1


def test_import_of_a_missing_file_is_a_clear_error(database):
    result = run_cli("events", "import", "/nonexistent/file.jsonl")
    assert result.exit_code == 1 and "Error: cannot read /nonexistent/file.jsonl" in result.output


def test_tail_follows_new_events_until_interrupted(database, tmp_path):
    seed(database, [("old", b"{}")])
    env = {**os.environ, "RUNLOG_DATABASE_URL": database, "RUNLOG_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from runlog.api.cli import main; main()", "events", "tail"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert "Following events after position 1" in proc.stderr.readline()
        seed(database, [("fresh", b"{}")])
        line = proc.stdout.readline()
        assert line.startswith("2\t") and "fresh@1" in line and "test.seeded" in line
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "Stopped." in err and "Traceback" not in err


def test_export_and_import_show_a_progress_bar_on_a_terminal(database, tmp_path):
    seed(database, [("s", b"{}")] * 3)
    target = tmp_path / "out.jsonl"
    env = {"RUNLOG_DATABASE_URL": database, "RUNLOG_HOME": str(tmp_path / "home")}
    outputs = {
        command[1]: run_on_terminal(env, *command)
        for command in (["events", "export", str(target)], ["events", "import", str(target)])
    }
    assert "Exporting" in outputs["export"] and "Exported 3 event(s)" in outputs["export"]
    assert "Importing" in outputs["import"] and "3 were already stored" in outputs["import"]


def test_no_progress_bar_when_not_on_a_terminal(database, tmp_path):
    seed(database, [("s", b"{}")])
    result = run_cli("events", "export", str(tmp_path / "x.jsonl"))
    assert "Exporting" not in result.output


def test_export_shows_runlog_events_as_json_with_text_ids_and_import_restores_the_same_event(
    database, tmp_path, monkeypatch
):
    from runlog.schema import events as catalogue

    run_id = uuid4()
    event = catalogue.FlowRunDeleted(flow_run_id=run_id)
    seed(database, [(f"flow-run-{run_id}", catalogue.encode(event))])
    exported = tmp_path / "log.jsonl"
    assert run_cli("events", "export", str(exported)).exit_code == 0
    (line,) = [json.loads(text) for text in exported.read_text().splitlines()]
    assert line["data"] == {"kind": "flow_run.deleted", "flow_run_id": str(run_id)}

    copy_url = f"sqlite:///{tmp_path}/copy.db"
    monkeypatch.setenv("RUNLOG_DATABASE_URL", copy_url)
    assert run_cli("events", "import", str(exported)).exit_code == 0

    async def stored() -> list:
        async with open_store(copy_url) as store:
            return [catalogue.decode(e.data) async for e in store.read_all()]

    assert asyncio.run(stored()) == [event]
