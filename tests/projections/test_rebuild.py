"""Rebuilding projections beside the live tables (projections/rebuild.py), on both backends:
the swap equals `projections verify`'s rebuild, appends and readers go on during it, a killed
rebuild leaves the live view intact and is resumed, and a new code version rebuilds on start."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from uuid import UUID, uuid4

import msgspec
import pytest

from runlog.api.queries import run_filters
from runlog.api.queries.filtering import Dialect
from runlog.api.schemas import filters as f
from runlog.commands import flow_runs
from runlog.commands.flow_runs import NewFlowRun
from runlog.eventstore import NewEvent, open_store
from runlog.projections import rebuild as rebuilding
from runlog.projections.cache import ViewCache
from runlog.projections.registry import inline_projections
from runlog.projections.rebuild import SHADOW, ShadowTx, UnknownProjection, rebuild
from runlog.projections.runs_writer import FLOW_RUN_TAGS, FLOW_RUNS, RunsProjection
from runlog.projections.status import statuses
from runlog.projections.verify import verify
from runlog.schema import events as catalogue

from ..api.test_cli_projections import record_some_runs


async def _rows(url: str, table: str) -> list[tuple]:
    async with open_store(url, migrate=False) as store, store.reading() as tx:
        return sorted(tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                      for row in await tx.fetch(f"SELECT * FROM {table}"))


async def _tamper(url: str, *statements: str) -> None:
    async with open_store(url) as store, store.reading() as tx:
        for sql in statements:
            await tx.execute(sql)


async def _tables(url: str) -> set[str]:
    async with open_store(url, migrate=False) as store, store.reading() as tx:
        if tx.dialect == "postgres":
            rows = await tx.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        else:
            rows = await tx.fetch("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {row[0] for row in rows}


def test_the_shadow_transaction_names_shadow_tables_where_sql_names_the_projections_tables():
    shadow = ShadowTx(type("Tx", (), {"dialect": "sqlite"})(), [FLOW_RUNS, FLOW_RUN_TAGS])
    assert shadow.sql(FLOW_RUNS.upsert_sql).startswith(f"INSERT INTO {SHADOW}flow_runs (id, version,")
    assert shadow.sql(FLOW_RUN_TAGS.delete_sql) == f"DELETE FROM {SHADOW}flow_run_tags WHERE run_id = ? AND tag = ?"
    # Columns and other tables are left alone; only a name after FROM/INTO/UPDATE/JOIN moves.
    sql = "SELECT flow_runs.id FROM flow_runs JOIN flows ON flows.id = flow_runs.flow_id WHERE x IN (SELECT 1 FROM flow_run_tags)"
    assert shadow.sql(sql) == (
        f"SELECT flow_runs.id FROM {SHADOW}flow_runs JOIN flows ON flows.id = flow_runs.flow_id "
        f"WHERE x IN (SELECT 1 FROM {SHADOW}flow_run_tags)"
    )


async def test_a_rebuild_replaces_the_live_tables_with_the_fold_of_the_log(store_url):
    ids = await record_some_runs(store_url)
    await _tamper(store_url, f"UPDATE flow_runs SET state_name = 'Tampered' WHERE id = '{ids[2]}'",
                  "DELETE FROM event_feed")
    assert not (await verify(store_url)).equal
    async with open_store(store_url, projections=inline_projections()) as store:
        done = await rebuild(store)
        head = await store.head()
    assert {r.name for r in done} >= {"runs", "flows", "event_feed", "run_history"}
    assert all(r.position == head for r in done)
    result = await verify(store_url)
    assert result.equal, [t for t in result.tables if not t.equal]
    assert not {t for t in await _tables(store_url) if t.startswith(SHADOW)}


async def test_a_rebuild_of_every_projection_in_many_batches_equals_the_fold_of_the_log(store_url, monkeypatch):
    """Batches small enough that every projection is folded batch by batch, not only in the
    final transaction: the event feed's rows made ahead of their transaction while the previous
    batch writes, the upserts of PostgreSQL's one statement per table, and a run's events split
    across batches (whose COPY into the shadow clashes, and is upserted) all end as `projections
    verify`'s fold."""
    monkeypatch.setattr(rebuilding, "BATCH_EVENTS", {"sqlite": 3, "postgres": 3})
    monkeypatch.setattr(rebuilding, "FINAL_LAG", 2)
    monkeypatch.setattr(rebuilding, "COPY_MIN_ROWS", 1)  # PostgreSQL's COPY into the shadows, and its clashes
    ids = await record_some_runs(store_url)
    await _tamper(store_url, f"UPDATE flow_runs SET state_name = 'Tampered' WHERE id = '{ids[2]}'",
                  "DELETE FROM event_feed", "DELETE FROM run_history_runs")
    assert not (await verify(store_url)).equal
    progress: list[tuple[int, int]] = []
    async with open_store(store_url, projections=inline_projections()) as store:
        head = await store.head()
        done = await rebuild(store, on_progress=lambda folded, total: progress.append((folded, total)))
    assert head > 3 * 2 + 2, "the log is too short for several batches"
    assert len(progress) > 2 and progress == sorted(progress), "progress is reported batch by batch, in order"
    assert all(r.position == head for r in done)
    result = await verify(store_url)
    assert result.equal, [t for t in result.tables if not t.equal]
    assert not {t for t in await _tables(store_url) if t.startswith(SHADOW)}


async def test_a_rebuild_of_one_projection_leaves_the_others_alone(store_url):
    ids = await record_some_runs(store_url)
    await _tamper(store_url, f"UPDATE flow_runs SET state_name = 'Tampered' WHERE id = '{ids[2]}'",
                  "UPDATE flows SET name = 'tampered'")
    async with open_store(store_url, projections=inline_projections()) as store:
        await rebuild(store, ["runs"])
        with pytest.raises(UnknownProjection, match="no projection named 'nope'"):
            await rebuild(store, ["nope"])
    assert "Tampered" not in {row[5] for row in await _rows(store_url, "flow_runs")}
    assert {row[1] for row in await _rows(store_url, "flows")} == {"tampered"}


async def test_appends_and_readers_go_on_during_a_rebuild_and_no_reader_misses_a_run(store_url, monkeypatch):
    # Small batches, so the rebuild takes many transactions while the load runs.
    monkeypatch.setattr(rebuilding, "BATCH_EVENTS", {"sqlite": 40, "postgres": 40})
    monkeypatch.setattr(rebuilding, "FINAL_LAG", 20)
    await record_some_runs(store_url)
    cache = ViewCache()
    async with open_store(store_url, projections=inline_projections(cache)) as store:
        async with store.reading() as tx:
            (flow_id,) = (await tx.fetch("SELECT id FROM flows"))[0]
        created: list[str] = []
        for i in range(30):
            view, _ = await flow_runs.create(store, NewFlowRun(flow_id=flow_id, name=f"before-{i}"), cache=cache)
            created.append(str(view.id))
        stop = asyncio.Event()
        checks = 0

        async def load() -> None:
            i = 0
            while not stop.is_set():
                view, _ = await flow_runs.create(store, NewFlowRun(flow_id=flow_id, name=f"during-{i}"), cache=cache)
                created.append(str(view.id))
                i += 1

        async def reader() -> None:
            nonlocal checks
            while not stop.is_set():
                committed = list(created)  # every run whose creation has returned
                async with store.reading() as tx:
                    seen = {row[0] for row in await tx.fetch("SELECT id FROM flow_runs")}
                missing = [run_id for run_id in committed if run_id not in seen]
                assert not missing, f"a reader missed {len(missing)} run(s) during the rebuild"
                checks += 1
                await asyncio.sleep(0)

        tasks = [asyncio.create_task(load()), asyncio.create_task(reader())]
        await asyncio.sleep(0.05)
        before = len(created)
        done = await rebuild(store, ["runs"])
        stop.set()
        await asyncio.gather(*tasks)
        assert len(created) > before, "no append went through while the rebuild ran"
        assert done[0].events > 0 and checks > 0
    result = await verify(store_url)
    assert result.equal, [t for t in result.tables if not t.equal]
    assert len(await _rows(store_url, "flow_runs")) == len(created) + 3  # record_some_runs: 4 made, 1 deleted


async def test_a_rebuild_puts_tampered_names_right_in_the_name_index_too(store_url, backend):
    """The swap writes flow_run_names like any writer, so on SQLite the triggers of migration
    0035 keep the trigram index in step: a name like_ finds the rebuilt names, and FTS5's own
    check finds the index equal to the names."""
    ids = await record_some_runs(store_url)  # run-0, run-2, run-3 left
    await _tamper(store_url, f"UPDATE flow_run_names SET name = 'tampered' WHERE run_id = '{ids[0]}'",
                  f"DELETE FROM flow_run_names WHERE run_id = '{ids[2]}'")

    async def named(like: str) -> set[UUID]:
        async with open_store(store_url, migrate=False) as store, store.reading() as tx:
            body = msgspec.convert({"flow_runs": {"name": {"like_": like}}}, f.FlowRunFilterRequest)
            sql, params = run_filters.FLOW_RUN_QUERY.where(Dialect(tx.dialect), body)
            return {UUID(str(row[0])) for row in await tx.fetch(f"SELECT fr.id FROM flow_runs fr WHERE {sql}", *params)}

    assert await named("tampered") == {ids[0]} and await named("RUN-") == {ids[3]}
    async with open_store(store_url, projections=inline_projections()) as store:
        await rebuild(store, ["runs"])
    assert await named("tampered") == set()
    assert await named("RUN-") == {ids[0], ids[2], ids[3]}
    if backend == "sqlite":
        async with open_store(store_url, migrate=False) as store, store.reading() as tx:
            # rank 1: the index compared with its content table (raises SQLITE_CORRUPT if unequal)
            await tx.execute("INSERT INTO flow_run_name_trigrams (flow_run_name_trigrams, rank) VALUES ('integrity-check', 1)")


KILLED_REBUILD = textwrap.dedent("""
    import asyncio, os, signal, sys
    from runlog.eventstore import open_store
    from runlog.projections import rebuild as rebuilding
    from runlog.projections.registry import inline_projections

    rebuilding.BATCH_EVENTS = {"sqlite": 5, "postgres": 5}
    rebuilding.FINAL_LAG = 1

    def killed(done, total):
        if done >= 10:  # a couple of batches in: the shadow has rows and a checkpoint
            os.kill(os.getpid(), signal.SIGKILL)

    async def main():
        async with open_store(sys.argv[1], projections=inline_projections()) as store:
            await rebuilding.rebuild(store, ["runs"], on_progress=killed)

    asyncio.run(main())
""")


async def test_a_killed_rebuild_leaves_the_live_view_intact_and_a_rerun_goes_on_from_its_checkpoint(store_url):
    await record_some_runs(store_url)
    live = await _rows(store_url, "flow_runs")
    proc = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", KILLED_REBUILD, store_url], capture_output=True, timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert await _rows(store_url, "flow_runs") == live
    assert f"{SHADOW}flow_runs" in await _tables(store_url)
    async with open_store(store_url, projections=inline_projections()) as store:
        (runs,) = [s for s in await statuses(store) if s.name == "runs"]
        assert runs.rebuilding is not None and runs.rebuilding >= 10
        head = await store.head()
        (done,) = await rebuild(store, ["runs"])
    assert done.events == head - runs.rebuilding  # went on from the shadow's checkpoint
    assert await _rows(store_url, "flow_runs") == live
    assert not {t for t in await _tables(store_url) if t.startswith(SHADOW)}
    assert (await verify(store_url)).equal


async def test_a_projection_whose_code_version_changed_is_rebuilt_when_the_server_starts(store_url, monkeypatch, tmp_path):
    from runlog.api.settings import load_settings
    from runlog.api.app import create_app
    from ..servers import serve_app

    ids = await record_some_runs(store_url)
    env = {"RUNLOG_HOME": str(tmp_path), "RUNLOG_DATABASE_URL": store_url}
    async with serve_app(create_app(load_settings(env=env))):
        pass  # the first start records every projection's version
    await _tamper(store_url, f"UPDATE flow_runs SET state_name = 'Tampered' WHERE id = '{ids[2]}'",
                  "UPDATE flows SET name = 'tampered'")
    monkeypatch.setattr(RunsProjection, "version", RunsProjection.version + 1)
    async with serve_app(create_app(load_settings(env=env))):
        async with open_store(store_url, migrate=False) as store:
            versions = {s.name: s.stored_version for s in await statuses(store)}
    assert versions["runs"] == RunsProjection.version
    assert "Tampered" not in {row[5] for row in await _rows(store_url, "flow_runs")}
    # Only the projection whose version changed was rebuilt.
    assert {row[1] for row in await _rows(store_url, "flows")} == {"tampered"}


async def test_status_shows_each_projection_with_its_checkpoint_and_lag(store_url):
    await record_some_runs(store_url)
    async with open_store(store_url, projections=inline_projections()) as store:
        head = await store.head()
        found = {s.name: s for s in await statuses(store)}
    assert found["runs"].kind == "inline" and found["runs"].checkpoint == head and found["runs"].lag_events == 0
    feed = found["event_feed"]
    assert feed.kind == "async" and feed.checkpoint == 0 and feed.lag_events == head  # no feed service ran
    assert feed.lag_seconds >= 0
    assert found["runs"].version == RunsProjection.version


async def test_run_history_followed_by_another_process_around_a_rebuild_counts_every_run_once(store_url):
    """The swap moves run_history's checkpoint; the catch-up in another process (another server
    worker) that had folded part of the log finds it moved and adds nothing twice to the cells."""
    from runlog.projections.catchup import CatchUp, CheckpointMoved
    from runlog.projections.run_history import RunHistoryProjection

    await record_some_runs(store_url)
    async with open_store(store_url, projections=inline_projections()) as server, open_store(store_url) as worker:
        head = await server.head()
        following = CatchUp(worker, RunHistoryProjection(worker), page=3)
        assert await following.run(upto=head // 2) == head // 2
        await rebuild(server, ["run_history"])
        with pytest.raises(CheckpointMoved):
            await following.run()
        assert await following.resume() == head
        assert await following.run() == head
    result = await verify(store_url)
    assert result.equal, [t for t in result.tables if not t.equal]


async def test_a_client_event_sent_twice_in_two_batches_shows_once_as_sent_last(store_url, monkeypatch):
    """The event feed's rows are keyed by the event's id, so a rebuild writes each batch into its
    shadow as new rows (COPY on PostgreSQL); a client that sent one event twice makes the second
    batch's rows clash with the first's, and that batch is upserted instead: the feed shows the
    event once, as sent last, and equals `projections verify`'s fold."""
    monkeypatch.setattr(rebuilding, "BATCH_EVENTS", {"sqlite": 3, "postgres": 3})
    monkeypatch.setattr(rebuilding, "FINAL_LAG", 2)
    monkeypatch.setattr(rebuilding, "COPY_MIN_ROWS", 1)
    event_id = uuid4()

    def sent(attempt: int, sent_id: UUID = event_id) -> NewEvent:
        event = catalogue.PrefectEventReceived(
            occurred=datetime(2026, 1, 1, tzinfo=UTC), event="acme.thing.happened",
            resource={"prefect.resource.id": "acme.thing.1"},
            related=[{"prefect.resource.id": "acme.x", "prefect.resource.role": "x"}],
            payload={"attempt": attempt}, event_id=sent_id,
        )
        return NewEvent(type=catalogue.event_type(event), data=catalogue.encode(event), id=uuid4())

    async with open_store(store_url, projections=inline_projections()) as store:
        await store.append("resource-acme.thing.1", [sent(1)])
    await record_some_runs(store_url)  # several batches apart
    async with open_store(store_url, projections=inline_projections()) as store:
        # Then other events, so that the second sending is folded in a batch, not the swap's.
        for event in (sent(2), *(sent(0, uuid4()) for _ in range(8))):
            await store.append("resource-acme.thing.1", [event])
        await rebuild(store, ["event_feed"])
    rows = [row for row in await _rows(store_url, "event_feed") if row[0] == str(event_id)]
    assert len(rows) == 1 and '"attempt":2' in rows[0][5]
    result = await verify(store_url)
    assert result.equal, [t for t in result.tables if not t.equal]
