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
        undone = [m.revision for m in await migrate.downgrade(conn, backend, 17)]
        assert undone[-1] == 18
        assert [m.revision for m in await migrate.upgrade(conn, backend, 18)] == [18]
    assert await queue_column() == expected
    async with migration_connection(store_url) as conn:
        assert [m.revision for m in await migrate.upgrade(conn, backend)] == undone[-2::-1]
    assert (await verify(store_url)).equal


async def test_the_runs_queue_lives_only_on_flow_runs_and_going_down_restores_flow_run_queues(store_url, backend):
    """The run_queue_column migration drops flow_run_queues (a run's queue is flow_runs.work_queue_id);
    its downgrade rebuilds the table from that column for the runs whose queue exists, and
    upgrading again drops it; the projections still verify."""
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
        await flow_runs.create(store, flow_runs.NewFlowRun(flow_id=flow.id), clock=clock)

    async def fetch(sql: str) -> list[tuple]:
        async with migration_connection(store_url) as conn:
            inner = conn._conn
            rows = await (inner.execute_fetchall(sql) if backend == "sqlite" else inner.fetch(sql))
        return [tuple(r) for r in rows]

    exists = ("SELECT name FROM sqlite_master WHERE name = 'flow_run_queues'" if backend == "sqlite"
              else "SELECT tablename FROM pg_tables WHERE tablename = 'flow_run_queues'")
    assert await fetch(exists) == []
    mine = next(m.revision for m in migrate.load_migrations(backend) if m.name == "run_queue_column")
    async with migration_connection(store_url) as conn:
        await migrate.downgrade(conn, backend, mine - 1)
    assert await fetch("SELECT flow_run_id, work_queue_id, work_pool_id FROM flow_run_queues") == [
        (str(queued.id), str(pool.default_queue_id), str(pool.id)),
    ]
    async with migration_connection(store_url) as conn:
        await migrate.upgrade(conn, backend)
    assert await fetch(exists) == []
    assert (await verify(store_url)).equal


async def test_the_deployment_status_migration_keeps_existing_deployments_not_ready(store_url, backend):
    """The migration giving deployments a status column gives existing rows NOT_READY, what
    their views (recorded before any status event) say; down and up again, a rebuild still
    equals the tables."""
    from datetime import UTC, datetime

    from runlog.commands import deployments, flows
    from runlog.commands.clock import ManualClock
    from runlog.projections.registry import inline_projections
    from runlog.projections.verify import verify

    clock = ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    async with open_store(store_url, projections=inline_projections()) as store:
        flow, _ = await flows.register(store, "f", clock=clock)
        await deployments.upsert(store, flow.id, "d", {}, [], clock=clock)
    revision = next(m.revision for m in migrate.load_migrations(backend) if "deployments_status_queue" in m.up)
    async with migration_connection(store_url) as conn:
        assert [m.revision for m in await migrate.downgrade(conn, backend, revision - 1)][-1] == revision
        assert [m.revision for m in await migrate.upgrade(conn, backend)][0] == revision
        inner = conn._conn
        sql = "SELECT status FROM deployments"
        rows = await (inner.execute_fetchall(sql) if backend == "sqlite" else inner.fetch(sql))
    assert [r[0] for r in rows] == ["NOT_READY"]
    assert (await verify(store_url)).equal


async def test_the_parent_task_run_index_holds_subflow_runs_only_on_postgres(store_url, backend):
    """Migration partial_parent_task_run_index: on PostgreSQL flow_runs_parent_task_run indexes
    only the runs with a parent task run (a state change of any other run writes no entry to
    it), the subflow lookups read it, and its downgrade makes it whole again."""
    if backend != "postgres":
        pytest.skip("SQLite's migration does nothing: it never rewrites an unchanged index entry")
    revision = next(m.revision for m in migrate.load_migrations(backend) if m.name == "partial_parent_task_run_index")
    definition = "SELECT indexdef FROM pg_indexes WHERE indexname = 'flow_runs_parent_task_run'"
    async with migration_connection(store_url) as conn:
        await migrate.upgrade(conn, backend)
        inner = conn._conn
        assert (await inner.fetchval(definition)).endswith("WHERE (parent_task_run_id IS NOT NULL)")
        await inner.execute("SET enable_seqscan = off")  # an empty table: ask whether the index can serve
        plan = "\n".join(r[0] for r in await inner.fetch(
            "EXPLAIN SELECT 1 FROM flow_runs WHERE parent_task_run_id = ANY($1::text[])", ["t"]
        ))
        await inner.execute("RESET enable_seqscan")
        assert "flow_runs_parent_task_run" in plan
        await migrate.downgrade(conn, backend, revision - 1)
        assert "WHERE" not in await inner.fetchval(definition)
        await migrate.upgrade(conn, backend)
        assert (await inner.fetchval(definition)).endswith("WHERE (parent_task_run_id IS NOT NULL)")


async def test_the_run_history_volatile_index_serves_only_the_volatile_lookups_on_postgres(store_url, backend):
    """Migration partial_run_history_volatile: on PostgreSQL run_history_runs_volatile holds only
    the runs not settled, the read side's lookups of Running and waiting runs still read it, and
    a lookup by id cannot take it for `kind` alone (even with the primary key gone the plan does
    not name it, where before the migration it did); its downgrade makes it whole again."""
    if backend != "postgres":
        pytest.skip("SQLite's migration does nothing: its planner would not read the partial index")
    revision = next(m.revision for m in migrate.load_migrations(backend) if m.name == "partial_run_history_volatile")
    definition = "SELECT indexdef FROM pg_indexes WHERE indexname = 'run_history_runs_volatile'"
    by_id = "EXPLAIN SELECT id FROM run_history_runs WHERE kind = $1 AND id = ANY($2::text[])"
    volatile = ("EXPLAIN SELECT id FROM run_history_runs WHERE kind = $1 AND volatile = 1 "
                "AND expected_start_time >= $2 AND expected_start_time < $3")

    async def plans(inner) -> tuple[str, str]:
        """The two lookups' plans on a table without its primary key (rolled back after)."""
        tx = inner.transaction()
        await tx.start()
        try:
            await inner.execute("SET LOCAL enable_seqscan = off")  # an empty table: ask what an index can serve
            await inner.execute("ALTER TABLE run_history_runs DROP CONSTRAINT run_history_runs_pkey")
            return ("\n".join(r[0] for r in await inner.fetch(by_id, "flow_run", ["a", "b"])),
                    "\n".join(r[0] for r in await inner.fetch(volatile, "flow_run", 0, 10)))
        finally:
            await tx.rollback()

    async with migration_connection(store_url) as conn:
        inner = conn._conn
        await migrate.upgrade(conn, backend)
        await migrate.downgrade(conn, backend, revision - 1)
        assert "WHERE" not in await inner.fetchval(definition)
        whole_by_id, _ = await plans(inner)
        assert "run_history_runs_volatile" in whole_by_id  # what the migration takes away
        await migrate.upgrade(conn, backend)
        assert (await inner.fetchval(definition)).endswith("WHERE (volatile <> 0)")
        partial_by_id, partial_volatile = await plans(inner)
        assert "run_history_runs_volatile" not in partial_by_id
        assert "run_history_runs_volatile" in partial_volatile
