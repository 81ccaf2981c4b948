"""Schema migrations on both backends: up from empty, down to empty, up again; refusals."""

from __future__ import annotations

from uuid import uuid4

import pytest

from runlog.eventstore import NewEvent, SchemaError, SchemaTooNew, migration_connection, open_store, parse_database_url
from runlog.eventstore import migrate


async def tables(url: str) -> set[str]:
    """User tables in the database (besides the runner's own bookkeeping table)."""
    async with migration_connection(url) as conn:
        inner = conn._conn  # the driver connection; tests may look inside
        if parse_database_url(url).backend == "sqlite":
            rows = await inner.execute_fetchall(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
            names = {r[0] for r in rows}
        else:
            rows = await inner.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            names = {r[0] for r in rows}
    return names - {"runlog_migrations"}


async def test_upgrade_from_empty_downgrade_to_empty_and_upgrade_again(store_url, backend):
    head = migrate.head_revision(backend)
    assert head >= 1
    async with migration_connection(store_url) as conn:
        assert await migrate.current_revision(conn) == 0
        applied = await migrate.upgrade(conn, backend)
        assert [m.revision for m in applied] == list(range(1, head + 1))
        assert await migrate.current_revision(conn) == head
        assert await migrate.upgrade(conn, backend) == []  # idempotent
    assert "events" in await tables(store_url)

    async with migration_connection(store_url) as conn:
        undone = await migrate.downgrade(conn, backend, 0)
        assert [m.revision for m in undone] == list(range(head, 0, -1))
        assert await migrate.current_revision(conn) == 0
    assert await tables(store_url) == set()

    async with migration_connection(store_url) as conn:
        await migrate.upgrade(conn, backend)
        history = await conn.applied()
        assert [a.revision for a in history] == list(range(1, head + 1))
    async with open_store(store_url, migrate=False) as store:
        recorded = await store.append("s", [NewEvent(type="t", data=b"", id=uuid4())])
        assert recorded[0].position == 1


async def test_a_store_refuses_a_schema_that_is_behind_when_not_migrating(store_url):
    with pytest.raises(SchemaError, match="runlog database upgrade"):
        async with open_store(store_url, migrate=False):
            pass


async def test_a_schema_newer_than_the_code_is_refused(store_url, backend):
    async with open_store(store_url):
        pass
    head = migrate.head_revision(backend)
    async with migration_connection(store_url) as conn:
        inner = conn._conn
        if backend == "sqlite":
            await inner.execute(
                "INSERT INTO runlog_migrations (revision, name, applied_at) VALUES (?, 'future', '2026-01-01T00:00:00.000000Z')", (head + 1,)
            )
        else:
            await inner.execute("INSERT INTO runlog_migrations (revision, name) VALUES ($1, 'future')", head + 1)
    for migrate_on_open in (True, False):
        with pytest.raises(SchemaTooNew, match=f"revision {head + 1}, newer than this runlog"):
            async with open_store(store_url, migrate=migrate_on_open):
                pass


@pytest.mark.parametrize(
    ("spec", "current", "direction", "target"),
    [
        (None, 1, "up", 1),
        (None, 1, "down", 0),
        ("head", 0, "up", 1),
        ("base", 1, "down", 0),
        ("-1", 1, "down", 0),
        ("-5", 1, "down", 0),
        ("0", 1, "down", 0),
        ("1", 0, "up", 1),
    ],
)
def test_resolve_target(spec, current, direction, target):
    assert migrate.resolve_target(spec, current, head=1, direction=direction) == target


@pytest.mark.parametrize(("spec", "message"), [("abc", "not a number"), ("99", "does not exist")])
def test_resolve_target_refuses_nonsense(spec, message):
    with pytest.raises(SchemaError, match=message):
        migrate.resolve_target(spec, 0, head=1, direction="up")


@pytest.mark.parametrize("backend_name", ["sqlite", "postgres"])
def test_every_migration_has_an_up_and_a_down(backend_name):
    migrations = migrate.load_migrations(backend_name)
    assert [m.revision for m in migrations] == list(range(1, len(migrations) + 1))
    assert all(m.up.strip() and m.down.strip() for m in migrations)


def test_both_backends_have_the_same_revisions():
    sqlite = [(m.revision, m.name) for m in migrate.load_migrations("sqlite")]
    postgres = [(m.revision, m.name) for m in migrate.load_migrations("postgres")]
    assert sqlite == postgres


async def test_migration_18_gives_existing_runs_their_queue_on_flow_runs(store_url, backend):
    """0018 copies each run's queue from flow_run_queues onto flow_runs (what
    get_scheduled_flow_runs reads); down and up again keeps it; runs outside a pool stay NULL."""
    from datetime import UTC, datetime

    from runlog.commands import flow_runs, flows, work_pools
    from runlog.commands.clock import ManualClock
    from runlog.projections.registry import inline_projections
    from runlog.projections.verify import verify

    clock = ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    async with open_store(store_url, projections=inline_projections()) as store:
        pool = await work_pools.create_pool(store, work_pools.NewWorkPool(name="p", type="process"), clock=clock)
        flow, _ = await flows.register(store, "f", clock=clock)
        queued, _ = await flow_runs.create(store, flow_runs.NewFlowRun(flow_id=flow.id, work_pool_name="p"), clock=clock)
        loose, _ = await flow_runs.create(store, flow_runs.NewFlowRun(flow_id=flow.id), clock=clock)

    async def queue_column() -> dict[str, str | None]:
        async with migration_connection(store_url) as conn:
            inner = conn._conn
            sql = "SELECT id, work_queue_id FROM flow_runs"
            rows = await (inner.execute_fetchall(sql) if backend == "sqlite" else inner.fetch(sql))
        return {r[0]: r[1] for r in rows}

    expected = {str(queued.id): str(pool.default_queue_id), str(loose.id): None}
    assert await queue_column() == expected
    async with migration_connection(store_url) as conn:
        # Down to 17 undoes 18 and every later migration; up again redoes them all.
        later = list(range(migrate.head_revision(backend), 17, -1))
        assert [m.revision for m in await migrate.downgrade(conn, backend, 17)] == later
        assert [m.revision for m in await migrate.upgrade(conn, backend)] == later[::-1]
    assert await queue_column() == expected
    assert (await verify(store_url)).equal
