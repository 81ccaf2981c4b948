"""Tag limits, v2 limits and leases over a real server on both backends; slots are events."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from runlog.api import keys
from runlog.commands import concurrency as commands
from runlog.commands.lease_expiry import lease_expiry_service
from runlog.projections.concurrency import ConcurrencyProjection
from runlog.schema import events as catalogue

from ..servers import serve


@pytest.fixture
def env(tmp_path, store_url: str) -> dict[str, str]:
    return {"RUNLOG_HOME": str(tmp_path), "RUNLOG_DATABASE_URL": store_url}


def task_holder() -> dict[str, str]:
    return {"type": "task_run", "id": str(uuid.uuid4())}


async def acquire(server, names: list[str], *, slots: int = 1, lease_duration: float = 60, holder=None):
    body = {"names": names, "slots": slots, "mode": "concurrency", "lease_duration": lease_duration}
    if holder is not None:
        body["holder"] = holder
    async with server.session.post(server.base + "/v2/concurrency_limits/increment-with-lease", json=body) as resp:
        return resp.status, await resp.json(), resp.headers.get("Retry-After")


async def release(server, lease_id: str) -> int:
    status, _ = await server.request("POST", "/v2/concurrency_limits/decrement-with-lease", json={"lease_id": lease_id})
    return status


async def create_tag(server, tag: str, limit: int) -> tuple[int, dict]:
    return await server.request("POST", "/concurrency_limits/", json={"tag": tag, "concurrency_limit": limit})


async def log_of(server) -> list[tuple[str, catalogue.AnyEvent]]:
    """The concurrency events in the log, as (stream, event)."""
    store = server.app[keys.STORE]
    return [
        (r.stream_id, catalogue.decode(r.data))
        async for r in store.read_all()
        if r.type.startswith(("concurrency_limit.", "concurrency_slots.", "concurrency_lease."))
    ]


# -- v1 tag limits ---------------------------------------------------------------------------------


async def test_tag_limits_are_created_read_listed_and_deleted(env) -> None:
    async with serve(env) as server:
        status, created = await create_tag(server, "db", 1)
        assert status == 201
        assert set(created) == {"id", "created", "updated", "tag", "concurrency_limit", "active_slots"}
        assert (created["tag"], created["concurrency_limit"], created["active_slots"]) == ("db", 1, [])

        # An upsert: the same tag again keeps its id and takes the new limit.
        status, again = await server.request("POST", "/concurrency_limits/", json={"tag": "db", "concurrency_limit": 3})
        assert status == 200 and again["id"] == created["id"] and again["concurrency_limit"] == 3

        status, read = await server.request("GET", "/concurrency_limits/tag/db")
        assert status == 200 and read["id"] == created["id"] and read["concurrency_limit"] == 3
        status, by_id = await server.request("GET", f"/concurrency_limits/{created['id']}")
        assert status == 200 and by_id["tag"] == "db"

        # The tag limit is the v2 limit "tag:db", with the same id.
        status, v2 = await server.request("GET", "/v2/concurrency_limits/tag:db")
        assert status == 200 and v2["id"] == created["id"] and v2["limit"] == 3

        for tag in ("api", "cpu"):
            await server.request("POST", "/concurrency_limits/", json={"tag": tag, "concurrency_limit": 2})
        await server.request("POST", "/v2/concurrency_limits/", json={"name": "not-a-tag", "limit": 1})
        status, listed = await server.request("POST", "/concurrency_limits/filter", json={})
        assert status == 200 and [c["tag"] for c in listed] == ["api", "cpu", "db"]
        status, page = await server.request("POST", "/concurrency_limits/filter", json={"limit": 1, "offset": 1})
        assert [c["tag"] for c in page] == ["cpu"]

        status, body = await server.request("DELETE", "/concurrency_limits/tag/db")
        assert status == 200
        status, body = await server.request("GET", "/concurrency_limits/tag/db")
        assert status == 404 and body == {"detail": "Concurrency limit not found"}
        status, body = await server.request("DELETE", "/concurrency_limits/tag/db")
        assert status == 404 and "detail" in body
        status, body = await server.request("GET", f"/concurrency_limits/{created['id']}")
        assert status == 404

        kinds = [type(e).__name__ for _s, e in await log_of(server) if e.limit_id == uuid.UUID(created["id"])]
        assert kinds == ["ConcurrencyLimitCreated", "ConcurrencyLimitUpdated", "ConcurrencyLimitDeleted"]


async def test_a_deleted_tag_limit_can_be_created_again(env) -> None:
    async with serve(env) as server:
        await server.request("POST", "/concurrency_limits/", json={"tag": "db", "concurrency_limit": 1})
        await server.request("DELETE", "/concurrency_limits/tag/db")
        status, body = await server.request("POST", "/concurrency_limits/", json={"tag": "db", "concurrency_limit": 4})
        assert status == 201 and body["concurrency_limit"] == 4


async def test_tag_limit_active_slots_are_the_task_runs_holding_it(env) -> None:
    async with serve(env) as server:
        await server.request("POST", "/concurrency_limits/", json={"tag": "db", "concurrency_limit": 2})
        holder = task_holder()
        status, _granted, _ = await acquire(server, ["tag:db"], holder=holder)
        assert status == 200
        await acquire(server, ["tag:db"], holder={"type": "flow_run", "id": str(uuid.uuid4())})
        status, body = await server.request("GET", "/concurrency_limits/tag/db")
        assert body["active_slots"] == [holder["id"]]
        status, v2 = await server.request("GET", "/v2/concurrency_limits/tag:db")
        assert v2["active_slots"] == 2


async def test_reset_revokes_every_lease_and_grants_the_override(env) -> None:
    async with serve(env) as server:
        await server.request("POST", "/concurrency_limits/", json={"tag": "db", "concurrency_limit": 2})
        await acquire(server, ["tag:db"], holder=task_holder())
        await acquire(server, ["tag:db"], holder=task_holder())
        keep = str(uuid.uuid4())
        status, _ = await server.request("POST", "/concurrency_limits/tag/db/reset", json={"slot_override": [keep]})
        assert status == 200
        status, body = await server.request("GET", "/concurrency_limits/tag/db")
        assert body["active_slots"] == [keep]
        status, _ = await server.request("POST", "/concurrency_limits/tag/nope/reset", json={})
        assert status == 404
        reasons = [e.reason for _s, e in await log_of(server) if isinstance(e, catalogue.ConcurrencySlotsReleased)]
        assert reasons == ["revoked", "revoked"]


# -- leases ----------------------------------------------------------------------------------------


async def test_acquire_up_to_the_limit_then_423_with_retry_after(env) -> None:
    async with serve(env) as server:
        status, created = await create_tag(server, "db", 2)
        for _ in range(2):
            status, granted, _ = await acquire(server, ["tag:db"], holder=task_holder())
            assert status == 200
            uuid.UUID(granted["lease_id"])
            assert granted["limits"] == [{"id": created["id"], "name": "tag:db", "limit": 2}]
        status, body, retry_after = await acquire(server, ["tag:db"], holder=task_holder())
        assert status == 423
        assert isinstance(body["detail"], str) and body["detail"]
        assert retry_after is not None and 0 < float(retry_after) <= 10 * 1.3


async def test_release_frees_a_slot_and_unknown_leases_are_a_no_op(env) -> None:
    async with serve(env) as server:
        await server.request("POST", "/v2/concurrency_limits/", json={"name": "gpu", "limit": 1})
        status, granted, _ = await acquire(server, ["gpu"])
        assert status == 200
        assert (await acquire(server, ["gpu"]))[0] == 423
        status, body = await server.request(
            "POST", "/v2/concurrency_limits/decrement-with-lease", json={"lease_id": granted["lease_id"]}
        )
        assert status == 204
        assert (await acquire(server, ["gpu"]))[0] == 200
        status, _ = await server.request(
            "POST", "/v2/concurrency_limits/decrement-with-lease", json={"lease_id": str(uuid.uuid4())}
        )
        assert status == 204


async def test_renew_answers_204_and_410_once_the_lease_is_gone(env) -> None:
    async with serve(env) as server:
        await server.request("POST", "/v2/concurrency_limits/", json={"name": "gpu", "limit": 1})
        _status, granted, _ = await acquire(server, ["gpu"])
        renew = f"/v2/concurrency_limits/leases/{granted['lease_id']}/renew"
        status, _ = await server.request("POST", renew, json={"lease_duration": 300})
        assert status == 204
        status, body = await server.request("POST", f"/v2/concurrency_limits/leases/{uuid.uuid4()}/renew", json={})
        assert status == 410 and "detail" in body
        await release(server, granted["lease_id"])
        status, _ = await server.request("POST", renew, json={"lease_duration": 300})
        assert status == 410

        renewals = [e for _s, e in await log_of(server) if isinstance(e, catalogue.ConcurrencyLeaseRenewed)]
        assert len(renewals) == 1 and str(renewals[0].lease_id) == granted["lease_id"]


async def test_names_without_limits_are_ignored(env) -> None:
    async with serve(env) as server:
        status, granted, _ = await acquire(server, ["tag:nothing", "nor-this"])
        assert status == 200 and granted["limits"] == []
        uuid.UUID(granted["lease_id"])
        await server.request("POST", "/v2/concurrency_limits/", json={"name": "gpu", "limit": 1})
        status, granted, _ = await acquire(server, ["gpu", "nor-this"])
        assert status == 200 and [lim["name"] for lim in granted["limits"]] == ["gpu"]


async def test_inactive_limits_do_not_limit(env) -> None:
    async with serve(env) as server:
        await server.request("POST", "/v2/concurrency_limits/", json={"name": "gpu", "limit": 1, "active": False})
        for _ in range(3):
            status, granted, _ = await acquire(server, ["gpu"])
            assert status == 200 and granted["limits"] == []


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"names": ["zero"], "slots": 1}, "Slots requested is greater than the limit"),
        ({"names": ["two"], "slots": 3}, "Slots requested is greater than the limit"),
        ({"names": ["two"], "slots": 0}, None),
        ({"names": [], "slots": 1}, None),
        ({"names": ["two"], "slots": 1, "lease_duration": 59}, None),
        ({"names": ["two"], "slots": 1, "lease_duration": 86_401}, None),
        ({"names": ["two"], "slots": 1, "holder": {"type": "worker", "id": str(uuid.uuid4())}}, None),
        ({"names": ["two"], "slots": 1, "holder": {"type": "task_run", "id": str(uuid.uuid4()), "x": 1}}, None),
        ({"names": ["two"], "slots": 1, "mode": "rate_limit"}, None),
    ],
)
async def test_impossible_acquisitions_are_422(env, body: dict, detail: str | None) -> None:
    async with serve(env) as server:
        await server.request("POST", "/v2/concurrency_limits/", json={"name": "zero", "limit": 0})
        await server.request("POST", "/v2/concurrency_limits/", json={"name": "two", "limit": 2})
        status, answer = await server.request("POST", "/v2/concurrency_limits/increment-with-lease", json=body)
        assert status == 422
        if detail is not None:
            assert answer == {"detail": detail}


async def test_an_acquisition_over_several_limits_takes_all_or_nothing(env) -> None:
    async with serve(env) as server:
        for name in ("a", "b", "c"):
            await server.request("POST", "/v2/concurrency_limits/", json={"name": name, "limit": 1})
        for blocker in ("a", "b", "c"):
            status, held, _ = await acquire(server, [blocker])
            assert status == 200
            status, _body, _ = await acquire(server, ["a", "b", "c"])
            assert status == 423
            await release(server, held["lease_id"])
            # Nothing of the refused acquisition stayed held: every limit is free again.
            for name in ("a", "b", "c"):
                status, limit = await server.request("GET", f"/v2/concurrency_limits/{name}")
                assert limit["active_slots"] == 0, (blocker, name)
        status, granted, _ = await acquire(server, ["c", "a", "b"])
        assert status == 200 and sorted(lim["name"] for lim in granted["limits"]) == ["a", "b", "c"]

        # Whatever a refused acquisition took first, it gave back in the log too.
        taken: dict[tuple, int] = {}
        for _s, e in await log_of(server):
            if isinstance(e, catalogue.ConcurrencySlotsAcquired):
                taken[(e.lease_id, e.limit_id)] = 1
            elif isinstance(e, catalogue.ConcurrencySlotsReleased):
                taken.pop((e.lease_id, e.limit_id))
        assert {lease for lease, _limit in taken} == {uuid.UUID(granted["lease_id"])}


async def test_fifty_concurrent_acquisitions_on_a_limit_of_five_grant_exactly_five(env) -> None:
    async with serve(env) as server:
        await server.request("POST", "/concurrency_limits/", json={"tag": "db", "concurrency_limit": 5})
        results = await asyncio.gather(*(acquire(server, ["tag:db"], holder=task_holder()) for _ in range(50)))
        statuses = sorted(status for status, _body, _ra in results)
        assert statuses.count(200) == 5 and statuses.count(423) == 45, statuses
        assert all(float(ra) > 0 for status, _b, ra in results if status == 423)

        status, limit = await server.request("GET", "/concurrency_limits/tag/db")
        assert len(limit["active_slots"]) == 5
        acquired = [e for _s, e in await log_of(server) if isinstance(e, catalogue.ConcurrencySlotsAcquired)]
        assert len(acquired) == 5
        assert {str(e.lease_id) for e in acquired} == {body["lease_id"] for status, body, _ in results if status == 200}


async def test_every_slot_taken_renewed_and_freed_is_an_event(env) -> None:
    async with serve(env) as server:
        status, limit = await server.request("POST", "/v2/concurrency_limits/", json={"name": "gpu", "limit": 2})
        holder = task_holder()
        _s, first, _ = await acquire(server, ["gpu"], slots=2, holder=holder, lease_duration=120)
        renew = f"/v2/concurrency_limits/leases/{first['lease_id']}/renew"
        await server.request("POST", renew, json={"lease_duration": 600})
        await release(server, first["lease_id"])
        await acquire(server, ["gpu"])
        status, _ = await server.request("DELETE", "/v2/concurrency_limits/gpu")
        assert status == 204

        events = await log_of(server)
        assert {stream for stream, _e in events} == {f"concurrency-limit-{limit['id']}"}
        assert [type(e).__name__ for _s, e in events] == [
            "ConcurrencyLimitCreated",
            "ConcurrencySlotsAcquired",
            "ConcurrencyLeaseRenewed",
            "ConcurrencySlotsReleased",
            "ConcurrencySlotsAcquired",
            "ConcurrencySlotsReleased",
            "ConcurrencyLimitDeleted",
        ]
        got = events[1][1]
        assert isinstance(got, catalogue.ConcurrencySlotsAcquired)
        assert (str(got.lease_id), got.slots, got.name) == (first["lease_id"], 2, "gpu")
        assert got.holder == catalogue.ConcurrencyLeaseHolder(type="task_run", id=uuid.UUID(holder["id"]))
        assert got.expires_at - got.acquired_at == timedelta(seconds=120)
        assert [e.reason for _s, e in events if isinstance(e, catalogue.ConcurrencySlotsReleased)] == [
            "released",
            "revoked",
        ]


# -- expiry ----------------------------------------------------------------------------------------


def later(seconds: float):
    return lambda: datetime.now(UTC) + timedelta(seconds=seconds)


async def test_an_expired_lease_frees_its_slot_without_the_sweeper(env) -> None:
    async with serve(env) as server:
        store = server.app[keys.STORE]
        await server.request("POST", "/v2/concurrency_limits/", json={"name": "gpu", "limit": 1})
        status, old, _ = await acquire(server, ["gpu"], lease_duration=60)
        assert status == 200
        assert isinstance(await commands.acquire(store, ["gpu"], 1, clock=later(30)), commands.Locked)

        granted = await commands.acquire(store, ["gpu"], 1, lease_duration=60, clock=later(61))
        assert isinstance(granted, commands.Granted) and [v.name for v in granted.limits] == ["gpu"]
        # The acquisition recorded the old lease's expiry in the same append as its own slot.
        events = [e for _s, e in await log_of(server)][-2:]
        assert isinstance(events[0], catalogue.ConcurrencySlotsReleased)
        assert (str(events[0].lease_id), events[0].reason) == (old["lease_id"], "expired")
        assert isinstance(events[1], catalogue.ConcurrencySlotsAcquired) and events[1].lease_id == granted.lease_id
        # The old holder has lost its lease.
        status, _ = await server.request("POST", f"/v2/concurrency_limits/leases/{old['lease_id']}/renew", json={})
        assert status == 410


async def test_renewing_an_expired_lease_is_410_and_frees_it_everywhere(env) -> None:
    async with serve(env) as server:
        store = server.app[keys.STORE]
        for name in ("a", "b"):
            await server.request("POST", "/v2/concurrency_limits/", json={"name": name, "limit": 1})
        _s, granted, _ = await acquire(server, ["a", "b"], lease_duration=60)
        lease_id = uuid.UUID(granted["lease_id"])
        assert await commands.renew(store, lease_id, 60, clock=later(30)) is True
        assert await commands.renew(store, lease_id, 60, clock=later(200)) is False
        for name in ("a", "b"):
            status, limit = await server.request("GET", f"/v2/concurrency_limits/{name}")
            assert limit["active_slots"] == 0
        reasons = [e.reason for _s, e in await log_of(server) if isinstance(e, catalogue.ConcurrencySlotsReleased)]
        assert reasons == ["expired", "expired"]


async def test_the_lease_expiry_step_records_expired_leases(env) -> None:
    async with serve(env) as server:
        store = server.app[keys.STORE]
        await server.request("POST", "/v2/concurrency_limits/", json={"name": "gpu", "limit": 3})
        await server.request("POST", "/v2/concurrency_limits/", json={"name": "cpu", "limit": 3})
        _s, short, _ = await acquire(server, ["gpu", "cpu"], lease_duration=60)
        _s, long, _ = await acquire(server, ["gpu"], lease_duration=600)
        assert await commands.expire_leases(store, clock=later(30)) == 0

        step = lease_expiry_service(store).step
        assert await step(later(61)()) == 2  # one lease, held on two limits
        released = [e for _s, e in await log_of(server) if isinstance(e, catalogue.ConcurrencySlotsReleased)]
        assert sorted((str(e.lease_id), e.reason) for e in released) == [(short["lease_id"], "expired")] * 2
        status, gpu = await server.request("GET", "/v2/concurrency_limits/gpu")
        assert gpu["active_slots"] == 1
        # Nothing is expired twice, however often the step runs.
        assert await step(later(61)()) == 0
        assert long["lease_id"] != short["lease_id"]


# -- v2 limits -------------------------------------------------------------------------------------


async def test_global_limits_crud(env) -> None:
    async with serve(env) as server:
        body = {"name": "mygcl", "limit": 2, "active": True, "active_slots": 0, "slot_decay_per_second": 0.0}
        status, created = await server.request("POST", "/v2/concurrency_limits/", json=body)
        assert status == 201
        assert {k: created[k] for k in ("name", "limit", "active", "active_slots", "denied_slots")} == {
            "name": "mygcl", "limit": 2, "active": True, "active_slots": 0, "denied_slots": 0,
        }
        assert created["slot_decay_per_second"] == 0.0 and created["avg_slot_occupancy_seconds"] == 2.0
        status, body = await server.request("POST", "/v2/concurrency_limits/", json={"name": "mygcl", "limit": 1})
        assert status == 409 and "detail" in body
        status, _ = await server.request("POST", "/v2/concurrency_limits/", json={"name": "a/b", "limit": 1})
        assert status == 422

        status, by_name = await server.request("GET", "/v2/concurrency_limits/mygcl")
        status2, by_id = await server.request("GET", f"/v2/concurrency_limits/{created['id']}")
        assert status == status2 == 200 and by_name == by_id
        status, body = await server.request("GET", "/v2/concurrency_limits/nope")
        assert status == 404 and body == {"detail": "Concurrency Limit not found"}

        status, _ = await server.request("PATCH", "/v2/concurrency_limits/mygcl", json={"limit": 5, "active": False})
        assert status == 204
        status, read = await server.request("GET", "/v2/concurrency_limits/mygcl")
        assert (read["limit"], read["active"]) == (5, False)
        status, _ = await server.request("PATCH", "/v2/concurrency_limits/nope", json={"limit": 5})
        assert status == 404

        await server.request("POST", "/v2/concurrency_limits/", json={"name": "another", "limit": 1})
        status, listed = await server.request("POST", "/v2/concurrency_limits/filter", json={})
        assert [lim["name"] for lim in listed] == ["another", "mygcl"]
        status, page = await server.request("POST", "/v2/concurrency_limits/filter", json={"offset": 1, "limit": 5})
        assert [lim["name"] for lim in page] == ["mygcl"]

        status, _ = await server.request("DELETE", "/v2/concurrency_limits/mygcl")
        assert status == 204
        status, _ = await server.request("DELETE", f"/v2/concurrency_limits/{created['id']}")
        assert status == 404


# -- the tables are a projection -------------------------------------------------------------------


async def test_replaying_the_log_rebuilds_the_same_tables(env, tmp_path) -> None:
    """The concurrency tables hold nothing the log does not: a replay into an empty store
    gives the same rows."""
    from runlog.eventstore import NewEvent, open_store

    async with serve(env) as server:
        store = server.app[keys.STORE]
        for name, limit in (("a", 2), ("b", 1), ("c", 3)):
            await server.request("POST", "/v2/concurrency_limits/", json={"name": name, "limit": limit})
        _s, kept, _ = await acquire(server, ["a", "b"], holder=task_holder())
        _s, gone, _ = await acquire(server, ["a", "c"], slots=1)
        await acquire(server, ["b"])  # refused
        await server.request("POST", f"/v2/concurrency_limits/leases/{kept['lease_id']}/renew", json={})
        await release(server, gone["lease_id"])
        await server.request("PATCH", "/v2/concurrency_limits/c", json={"limit": 5})
        await server.request("DELETE", "/v2/concurrency_limits/c")
        # Renewed for 300 s: past that, taking a slot of "a" records `kept` expired there, not on "b".
        await commands.acquire(store, ["a"], 1, clock=later(400))

        queries = (
            "SELECT * FROM concurrency_limits ORDER BY id",
            "SELECT * FROM concurrency_leases ORDER BY lease_id, limit_id",
        )
        async with store.reading() as tx:
            live = [[tuple(row) for row in await tx.fetch(sql)] for sql in queries]
        records = [r async for r in store.read_all()]

    async with open_store(f"sqlite:///{tmp_path}/replay.db", projections=[ConcurrencyProjection()]) as replay:
        for r in records:
            await replay.append(r.stream_id, [NewEvent(type=r.type, data=r.data, id=r.id)])
        async with replay.reading() as tx:
            rebuilt = [[tuple(row) for row in await tx.fetch(sql)] for sql in queries]
    assert rebuilt == live
    assert len(live[0]) == 3 and len(live[1]) == 2
