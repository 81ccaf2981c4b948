"""The deployments fold, without a database: a deployment's stream folded event by event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from runlog.projections.deployments import evolve_deployment
from runlog.schema import events as catalogue

T0 = datetime(2025, 1, 1, tzinfo=UTC)
DEPLOYMENT, FLOW, S1, S2 = (uuid.uuid4() for _ in range(4))


def fold(*events):
    view = None
    for event in events:
        view = evolve_deployment(view, event)
    return view


CREATED = catalogue.DeploymentCreated(
    deployment_id=DEPLOYMENT, flow_id=FLOW, name="d", created=T0,
    fields={"tags": ["a"], "parameters": {"x": 1}, "work_pool_name": "pool", "unknown_field": "ignored"},
)


def test_a_creation_sets_the_fields_it_carries_and_ignores_unknown_ones() -> None:
    view = fold(CREATED)
    assert view.tags == ["a"] and view.parameters == {"x": 1} and view.work_pool_name == "pool"
    assert view.paused is False and view.enforce_parameter_schema is True and view.created == view.updated == T0


def test_updates_replace_only_their_fields_and_move_updated() -> None:
    later = T0 + timedelta(minutes=1)
    view = fold(CREATED, catalogue.DeploymentUpdated(deployment_id=DEPLOYMENT, changes={"paused": True}, updated=later))
    assert view.paused is True and view.tags == ["a"] and view.updated == later and view.created == T0


def test_schedules_are_added_updated_and_removed_in_order() -> None:
    add = [catalogue.DeploymentScheduleCreated(
        deployment_id=DEPLOYMENT, schedule_id=schedule_id, schedule={"interval": 60.0}, slug=slug, created=T0,
    ) for schedule_id, slug in ((S1, "one"), (S2, "two"))]
    changed = catalogue.DeploymentScheduleUpdated(
        deployment_id=DEPLOYMENT, schedule_id=S1, changes={"active": False, "id": "not-a-field"}, updated=T0,
    )
    view = fold(CREATED, *add, changed)
    assert [(s.id, s.slug, s.active) for s in view.schedules] == [(S1, "one", False), (S2, "two", True)]
    view = fold(CREATED, *add, catalogue.DeploymentScheduleDeleted(deployment_id=DEPLOYMENT, schedule_id=S1))
    assert [s.id for s in view.schedules] == [S2]


def test_nothing_but_a_creation_starts_a_deployment_and_a_deletion_ends_it() -> None:
    assert fold(catalogue.DeploymentUpdated(deployment_id=DEPLOYMENT, changes={}, updated=T0)) is None
    assert fold(CREATED, catalogue.DeploymentDeleted(deployment_id=DEPLOYMENT)) is None
