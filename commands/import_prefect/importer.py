"""The import: each table of the source read in pages, turned into events (convert.py) and
appended to runlog's log, the read models updated in each append's transaction as a server does.

A page's records go in as a few multi-stream appends of up to GROUP_EVENTS events each (each
atomic: a run's creation and its states are committed together or not at all), and the next
page is read while they commit; every event has a fixed id (Prefect's, or derived from it), so a page imported
before adds nothing and an interrupted import, run again, goes on where it stopped.

While the runs, task runs and log lines go in, their tables' indexes that check nothing are set
aside and made once at the end (eventstore/deferred_indexes.py), when the import is at least as
large as what runlog holds.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import msgspec
from cryptography.fernet import Fernet, InvalidToken

from runlog.eventstore import EventStore, NewEvent, RecordedEvent, StreamAppend, Tx
from runlog.eventstore import deferred_indexes
from runlog.projections import blocks as block_reads
from runlog.projections.block_secrets import seal
from runlog.schema import events as catalogue
from runlog.schema import streams

from ..encryption import load_cipher
from ..run_logs import CopiedLogLine, import_logs
from . import convert
from .convert import Append, Ids
from .source import Row, Source, SourceError, flag, js, uid, when

PAGE = 2000
"""Rows read per query (runs, task runs, logs): each page's appends go in together."""
FIRST_ID = UUID(int=0)
SQL_POOL_NAMED = "SELECT id FROM work_pools WHERE name = ?"
SQL_VARIABLE_NAMED = "SELECT id FROM variables WHERE name = ?"
SQL_DOCUMENT_NAMED = "SELECT id FROM block_documents WHERE block_type_id = ? AND name = ?"
SQL_RUNS_HELD = "SELECT count(*) FROM flow_runs"
DEFERRED_TABLES = ("flow_runs", "task_runs", "logs", "flow_run_tags", "task_run_tags", "flow_run_names")
"""The tables the runs, task runs and log lines fill, whose indexes that check nothing are set
aside while they are imported (eventstore/deferred_indexes.py)."""


@dataclass
class TableReport:
    read: int = 0
    imported: int = 0
    already: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    """Why rows were not imported, and how many for each reason."""

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + count


@dataclass
class Report:
    revision: str = ""
    prefect_version: str = ""
    tables: dict[str, TableReport] = field(default_factory=dict)

    def table(self, name: str) -> TableReport:
        return self.tables.setdefault(name, TableReport())


class Progress:
    """What the importer tells its caller as it goes (the CLI draws a bar per table)."""

    def start(self, table: str, total: int) -> None: ...

    def advance(self, table: str, rows: int) -> None: ...


@dataclass
class Importer:
    source: Source
    store: EventStore
    progress: Progress = field(default_factory=Progress)
    report: Report = field(default_factory=Report)
    ids: Ids = field(default_factory=Ids)
    encryption_key: str | None = None
    """The source's block key when its server was given one (else its configuration table's)."""
    runlog_encryption_key: str | None = None
    """RUNLOG_SERVER_ENCRYPTION_KEY when set; else the key runlog's database keeps."""
    page: int = PAGE
    defer_indexes: bool | None = None
    """Whether the runs' and logs' indexes that check nothing are set aside while they are
    appended and made once at the end; None: when the source has at least as many runs as
    runlog already holds (see ``_defers``)."""

    async def run(self) -> Report:
        self.report.revision, self.report.prefect_version = await self.source.check_version()
        self._tables = await self.source.tables()
        await self.work_pools()
        await self.flows()
        await self.deployments()
        await self.concurrency_limits()
        await self.variables()
        deferred = await self._defers()
        if deferred:
            await self.store.write_transaction(_defer)
        try:
            await self.flow_runs()
            await self.task_runs()
            await self.logs()
        finally:
            if deferred:  # also after an error; a process that dies leaves it to the next store opened
                await self.store.write_transaction(_restore)
        await self.artifacts()
        await self.blocks()
        await self.automations()
        return self.report

    async def _defers(self) -> bool:
        """Set indexes aside when the import is large against what runlog holds: making an index
        at the end sorts every row of its table, old ones too, where keeping it current costs a
        b-tree insert per new row; past doubling the table, the sort is the cheaper."""
        if self.defer_indexes is not None:
            return self.defer_indexes
        runs = await self._count("flow_run")
        async with self.store.reading() as tx:
            ((held,),) = await tx.fetch(SQL_RUNS_HELD)
        return runs > 0 and runs >= int(held)

    # -- appending ------------------------------------------------------------------------------

    async def _append(self, table: str, appends: Sequence[Append], rows: int | None = None) -> None:
        """Append each record's events; a record counts as imported when any of its events was new."""
        head = await self.store.head()
        parts = [
            StreamAppend(stream, [
                NewEvent(type=catalogue.event_type(event), data=catalogue.encode(event), id=event_id)
                for event_id, event in events
            ])
            for stream, events in appends if events
        ]
        if len({part.stream_id for part in parts}) == len(parts):
            # One request for the page (one transaction, one future), not one per record: the
            # store's cost per append, not its cost per event, was most of an import's.
            # Without an expected version nothing can conflict, and the events stored already
            # are skipped by id as append skips them.
            results = [
                recorded
                for group in await asyncio.gather(*(self.store.append_streams(chunk) for chunk in _chunks(parts)))
                for recorded in group
            ]
        else:  # records sharing a stream (artifacts of one key...): appended one after the other
            results = await asyncio.gather(*(self.store.append(part.stream_id, part.events) for part in parts))
        report = self.report.table(table)
        for recorded in results:
            if _any_new(recorded, head):
                report.imported += 1
            else:
                report.already += 1
        self.progress.advance(table, len(appends) if rows is None else rows)

    async def _kept(self, table: str, appends: Sequence[Append]) -> list[Append]:
        """The appends whose record runlog does not already hold under its name (a flow, a
        deployment or a limit runlog's own clients created: its stream exists, started by
        another event). Those keep runlog's record; what refers to them joins it."""
        kept = []
        for append in appends:
            stream, events = append
            creation_id = events[0][0]
            if await self.store.stream_version(stream) > 0 and await self.store.read_event(creation_id) is None:
                self.report.table(table).skip("runlog already has one of that name (kept; what refers to it joins it)")
                continue
            kept.append(append)
        return kept

    async def _named_elsewhere(self, sql: str, name: str, own_id: Any, *scope: Any) -> bool:
        """Whether another record than ``own_id`` holds ``name`` in runlog (names are unique)."""
        async with self.store.reading() as tx:
            rows = await tx.fetch(sql, *(str(s) for s in scope), name)
        return bool(rows) and str(rows[0][0]) != str(uid(own_id))

    async def _count(self, table: str) -> int:
        rows = await self.source.fetch(f"SELECT count(*) AS n FROM {table}")
        return int(rows[0]["n"])

    async def _pages(self, table: str, columns: str = "*") -> Any:
        """The table's rows in pages by id (keyset: a page is one indexed range read)."""
        after: Any = FIRST_ID
        while True:
            rows = await self.source.fetch(
                f"SELECT {columns} FROM {table} WHERE id > ? ORDER BY id LIMIT ?", after, self.page,
            )
            if not rows:
                return
            self.report.table(table).read += len(rows)
            yield rows
            after = rows[-1]["id"]

    async def _children(self, sql: str, parent: str, ids: Iterable[Any]) -> dict[Any, list[Row]]:
        """The rows of ``sql`` whose ``parent`` column is one of ``ids``, by that column's value
        as the source holds it (the parents' own ``id`` values: the source matched them equal),
        so that no id is parsed to be looked up."""
        found: dict[Any, list[Row]] = defaultdict(list)
        for row in await self.source.ids_in(sql, list(ids)):
            found[row[parent]].append(row)
        return found

    # -- the tables -----------------------------------------------------------------------------

    async def work_pools(self) -> None:
        pools = await self.source.fetch("SELECT * FROM work_pool ORDER BY created, id")
        queues = await self._children("SELECT * FROM work_queue WHERE work_pool_id IN (?) ORDER BY created, id",
                                      "work_pool_id", [p["id"] for p in pools])
        self.progress.start("work_pool", len(pools))
        self.report.table("work_pool").read += len(pools)
        # One stream holds every pool: appended one after the other, in order.
        for pool in pools:
            if await self._named_elsewhere(SQL_POOL_NAMED, pool["name"], pool["id"]):
                self.report.table("work_pool").skip("runlog already has a work pool of that name (its runs name no pool)")
                continue
            await self._append("work_pool", [convert.work_pool(pool, queues.get(pool["id"], []), self.ids)])

    async def flows(self) -> None:
        self.progress.start("flow", await self._count("flow"))
        async for rows in self._pages("flow"):
            appends = [convert.flow(row, self.ids) for row in rows]
            await self._append("flow", await self._kept("flow", appends), len(rows))

    async def deployments(self) -> None:
        self.progress.start("deployment", await self._count("deployment"))
        # A deployment's concurrency limit lives in concurrency_limit_v2 ("deployment:<id>").
        limits = {uid(row["id"]): row["limit"] for row in await self.source.fetch(
            "SELECT id, \"limit\" FROM concurrency_limit_v2 WHERE name LIKE 'deployment:%'")}
        async for rows in self._pages("deployment"):
            schedules = await self._children(
                "SELECT * FROM deployment_schedule WHERE deployment_id IN (?) ORDER BY created, id",
                "deployment_id", [row["id"] for row in rows],
            )
            appends = []
            for row in rows:
                if uid(row["flow_id"]) not in self.ids.flows:
                    self.report.table("deployment").skip("its flow is not in the database")
                    continue
                limit = limits.get(uid(row["concurrency_limit_id"]), row["concurrency_limit"])
                appends.append(convert.deployment(row, schedules.get(row["id"], []), self.ids, limit))
            await self._append("deployment", await self._kept("deployment", appends), len(rows))

    async def concurrency_limits(self) -> None:
        limits = await self.source.fetch('SELECT * FROM concurrency_limit_v2 ORDER BY created, id')
        tag_limits = []
        if "concurrency_limit" in self._tables:
            tag_limits = await self.source.fetch("SELECT * FROM concurrency_limit ORDER BY created, id")
        self.progress.start("concurrency_limit_v2", len(limits) + len(tag_limits))
        self.report.table("concurrency_limit_v2").read += len(limits) + len(tag_limits)
        appends = [
            convert.concurrency_limit(
                self.ids.limit_name(row["name"]), row["limit"], flag(row["active"]), float(row["slot_decay_per_second"] or 0.0),
                when(row["created"]),
            )
            for row in limits
        ]
        names = {row["name"] for row in limits}
        for row in tag_limits:  # Prefect's v1 tag limits, from before they moved to v2 as tag:<tag>
            name = f"tag:{row['tag']}"
            if name in names:
                self.report.table("concurrency_limit_v2").skip(f"v1 tag limit also stored as {name}")
                continue
            appends.append(convert.concurrency_limit(name, row["concurrency_limit"], True, 0.0, when(row["created"])))
        await self._append("concurrency_limit_v2", await self._kept("concurrency_limit_v2", appends), len(appends))

    async def variables(self) -> None:
        rows = await self.source.fetch("SELECT * FROM variable ORDER BY created, id")
        self.progress.start("variable", len(rows))
        self.report.table("variable").read += len(rows)
        for row in rows:  # one stream for all variables: in order
            if await self._named_elsewhere(SQL_VARIABLE_NAMED, row["name"], row["id"]):
                self.report.table("variable").skip("runlog already has a variable of that name (kept)")
                continue
            await self._append("variable", [convert.variable(row)])

    async def flow_runs(self) -> None:
        self.progress.start("flow_run", await self._count("flow_run"))
        async with _Pipeline() as pipeline:
            async for rows in self._pages("flow_run"):
                states = await self._children(
                    "SELECT * FROM flow_run_state WHERE flow_run_id IN (?)", "flow_run_id", [row["id"] for row in rows],
                )
                appends = [convert.flow_run(row, states.get(row["id"], []), self.ids) for row in rows]
                await pipeline.then(self._append("flow_run", appends))

    async def task_runs(self) -> None:
        self.progress.start("task_run", await self._count("task_run"))
        async with _Pipeline() as pipeline:
            async for rows in self._pages("task_run"):
                states = await self._children(
                    "SELECT * FROM task_run_state WHERE task_run_id IN (?)", "task_run_id", [row["id"] for row in rows],
                )
                appends = [convert.task_run(row, states.get(row["id"], [])) for row in rows]
                await pipeline.then(self._append("task_run", appends))

    async def logs(self) -> None:
        self.progress.start("log", await self._count("log"))
        async with _Pipeline() as pipeline:
            async for rows in self._pages("log"):
                await pipeline.then(self._append_logs(_log_lines(rows)))

    async def _append_logs(self, lines: list[CopiedLogLine]) -> None:
        report = self.report.table("log")
        new = await import_logs(self.store, lines)
        report.imported += new
        report.already += len(lines) - new
        self.progress.advance("log", len(lines))

    async def artifacts(self) -> None:
        """In the order they were created: the latest artifact of a key is the last one created."""
        self.progress.start("artifact", await self._count("artifact"))
        rows = await self.source.fetch("SELECT * FROM artifact ORDER BY created, id LIMIT ?", self.page)
        while rows:
            self.report.table("artifact").read += len(rows)
            await self._append("artifact", [convert.artifact(row) for row in rows])
            last = rows[-1]
            rows = await self.source.fetch(
                "SELECT * FROM artifact WHERE created > ? OR (created = ? AND id > ?) ORDER BY created, id LIMIT ?",
                last["created"], last["created"], last["id"], self.page,
            )


    async def blocks(self) -> None:
        """Types and schemas runlog already has (by slug; by checksum and version) are used as
        they are; documents are decrypted with the source's key and sealed with runlog's."""
        types = await self.source.fetch("SELECT * FROM block_type ORDER BY created, id")
        schemas = await self.source.fetch("SELECT * FROM block_schema ORDER BY created, id")
        documents = await self.source.fetch("SELECT * FROM block_document ORDER BY created, id")
        references = await self.source.fetch("SELECT * FROM block_document_reference ORDER BY created, id")
        for table, rows in (("block_type", types), ("block_schema", schemas), ("block_document", documents)):
            self.progress.start(table, len(rows))
            self.report.table(table).read += len(rows)
        source_cipher = await self._source_cipher() if documents else None
        cipher = await load_cipher(self.store, self.runlog_encryption_key) if documents else None
        type_ids: dict[UUID, UUID] = {}
        schema_ids: dict[UUID, UUID] = {}
        events: list[tuple[str, tuple[UUID, catalogue.Event]]] = []
        async with self.store.reading() as tx:
            for row in types:
                known = await block_reads.block_type_by_slug(tx, row["slug"])
                type_ids[uid(row["id"])] = known.id if known is not None else uid(row["id"])
                if known is None or known.id == uid(row["id"]):
                    events.append(("block_type", convert.block_type(row)))
                else:
                    self.report.table("block_type").skip("of a slug runlog already has (that type is used)")
            for row in schemas:
                known_schema = await block_reads.block_schema_by_checksum(tx, row["checksum"], row["version"])
                schema_ids[uid(row["id"])] = known_schema.id if known_schema is not None else uid(row["id"])
                if known_schema is None or known_schema.id == uid(row["id"]):
                    events.append(("block_schema", convert.block_schema(row, type_ids[uid(row["block_type_id"])])))
                else:
                    self.report.table("block_schema").skip("with a checksum runlog already has (that schema is used)")
        nested: dict[UUID, dict[str, UUID]] = defaultdict(dict)
        for ref in references:
            nested[uid(ref["parent_block_document_id"])][ref["name"]] = uid(ref["reference_block_document_id"])
        # A document after the documents it nests, as a client must have saved them.
        for row in sorted(documents, key=lambda row: bool(nested.get(uid(row["id"])))):
            assert source_cipher is not None and cipher is not None
            type_id = type_ids.get(uid(row["block_type_id"]), uid(row["block_type_id"]))
            if row["name"] is not None and await self._named_elsewhere(
                SQL_DOCUMENT_NAMED, row["name"], row["id"], type_id,
            ):
                self.report.table("block_document").skip("runlog already has a block of that type and name (kept)")
                continue
            try:
                values = json.loads(source_cipher.decrypt(str(js(row["data"])).encode()))
            except InvalidToken:
                self.report.table("block_document").skip("cannot be decrypted with the source's key")
                continue
            events.append(("block_document", convert.block_document(
                row, seal(cipher, values), schema_ids.get(uid(row["block_schema_id"]), uid(row["block_schema_id"])),
                type_id, nested.get(uid(row["id"]), {}),
            )))
        # Every block record is on one stream: appended one after the other, in order.
        for table, event in events:
            await self._append(table, [(streams.BLOCKS, [event])])

    async def automations(self) -> None:
        rows = await self.source.fetch("SELECT * FROM automation ORDER BY created, id")
        self.progress.start("automation", len(rows))
        report = self.report.table("automation")
        report.read += len(rows)
        appends = []
        for row in rows:
            try:
                appends.append(convert.automation(row, self.ids))
            except msgspec.ValidationError as exc:
                report.skip(f"runlog cannot carry out ({exc})")
        await self._append("automation", appends, len(rows))

    async def _source_cipher(self) -> Fernet:
        key = self.encryption_key
        if key is None:
            rows = await self.source.fetch("SELECT value FROM configuration WHERE key = ?", "ENCRYPTION_KEY")
            if not rows:
                raise SourceError(
                    "the source's block documents are encrypted with a key it does not store (its server ran "
                    "with PREFECT_SERVER_ENCRYPTION_KEY): pass it with --prefect-encryption-key"
                )
            key = js(rows[0]["value"])["fernet_key"]
        try:
            return Fernet(key)
        except (ValueError, TypeError):
            raise SourceError("the Prefect encryption key is not a Fernet key") from None


class _Pipeline:
    """One page appending while the next is read and converted: the store's writer and the
    source's reads overlap instead of taking turns."""

    def __init__(self) -> None:
        self._pending: asyncio.Future[Any] | None = None

    async def then(self, work: Any) -> None:
        """Wait for the page before, then start ``work`` without waiting for it."""
        if self._pending is not None:
            try:
                await self._pending
            except BaseException:
                work.close()  # never started: the page before failed
                raise
        self._pending = asyncio.ensure_future(work)

    async def __aenter__(self) -> _Pipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._pending is not None:
            await self._pending


_COPIED_LINES = list[CopiedLogLine]


def _log_lines(rows: list[Row]) -> list[CopiedLogLine]:
    """A page of the source's log rows as lines to copy.

    In one msgspec conversion, as a rule: ids parsed, times as stored (SQLite's naive UTC text
    stays naive, which the logs table's columns read as UTC, as ``when`` makes it explicit).
    Rows it refuses (a time in another format) are converted one by one as before.
    """
    try:
        return msgspec.convert(rows, _COPIED_LINES, strict=False)
    except msgspec.ValidationError:
        return [
            CopiedLogLine(
                id=uid(row["id"]), name=row["name"], level=row["level"], message=row["message"],
                timestamp=when(row["timestamp"]), flow_run_id=uid(row["flow_run_id"]),
                task_run_id=uid(row["task_run_id"]), created=when(row["created"]),
            )
            for row in rows
        ]


GROUP_EVENTS = 4096
"""Events per multi-stream append: the store's own largest batch, so that a transaction of
the import holds SQLite's write lock no longer than a busy server's own do."""


def _chunks(parts: Sequence[StreamAppend]) -> list[list[StreamAppend]]:
    chunks: list[list[StreamAppend]] = [[]]
    size = 0
    for part in parts:
        if size and size + len(part.events) > GROUP_EVENTS:
            chunks.append([])
            size = 0
        chunks[-1].append(part)
        size += len(part.events)
    return chunks


async def _defer(tx: Tx) -> None:
    await deferred_indexes.defer(tx.fetch, tx.execute, tx.dialect, DEFERRED_TABLES)


async def _restore(tx: Tx) -> None:
    await deferred_indexes.restore(tx.fetch, tx.execute, tx.dialect)


def _any_new(recorded: list[RecordedEvent], head: int) -> bool:
    return any(event.position > head for event in recorded)


__all__ = ["Importer", "Progress", "Report", "TableReport"]
