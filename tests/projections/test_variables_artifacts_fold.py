"""The variable and artifact folds, pure: (view, event) -> view, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from runlog.projections.artifacts import ArtifactView, collection_id_for, evolve_artifact
from runlog.projections.variables import VariableView, evolve_variable
from runlog.schema import events as catalogue

T0 = datetime(2026, 3, 1, tzinfo=UTC)
T1 = T0 + timedelta(seconds=5)
VID, AID = uuid4(), uuid4()

VARIABLE = VariableView(id=VID, name="v", value={"a": 1}, tags=["t"], created=T0, updated=T0)


@pytest.mark.parametrize(
    ("view", "event", "expected"),
    [
        (None, catalogue.VariableCreated(variable_id=VID, name="v", value={"a": 1}, tags=["t"], created=T0), VARIABLE),
        (VARIABLE, catalogue.VariableUpdated(variable_id=VID, changes={"value": None}, updated=T1),
         VariableView(id=VID, name="v", value=None, tags=["t"], created=T0, updated=T1)),
        (VARIABLE, catalogue.VariableUpdated(variable_id=VID, changes={"name": "w", "tags": []}, updated=T1),
         VariableView(id=VID, name="w", value={"a": 1}, tags=[], created=T0, updated=T1)),
        (VARIABLE, catalogue.VariableUpdated(variable_id=VID, changes={"unknown": 1}, updated=T1),
         VariableView(id=VID, name="v", value={"a": 1}, tags=["t"], created=T0, updated=T1)),
        (VARIABLE, catalogue.VariableDeleted(variable_id=VID), None),
        (None, catalogue.VariableUpdated(variable_id=VID, changes={"value": 1}, updated=T1), None),
        (None, catalogue.VariableDeleted(variable_id=VID), None),
    ],
)
def test_evolve_variable(view, event, expected) -> None:
    assert evolve_variable(view, event) == expected


ARTIFACT = ArtifactView(id=AID, key="k", type="progress", data=0.0, created=T0, updated=T0)


@pytest.mark.parametrize(
    ("view", "event", "expected"),
    [
        (None, catalogue.ArtifactCreated(artifact_id=AID, key="k", type="progress", data=0.0, created=T0), ARTIFACT),
        (ARTIFACT, catalogue.ArtifactUpdated(artifact_id=AID, changes={"data": 50.0, "description": "half"}, updated=T1),
         ArtifactView(id=AID, key="k", type="progress", data=50.0, description="half", created=T0, updated=T1)),
        # Only data, description and metadata_ change; a key or type in the changes is ignored.
        (ARTIFACT, catalogue.ArtifactUpdated(artifact_id=AID, changes={"key": "x", "type": "y"}, updated=T1),
         ArtifactView(id=AID, key="k", type="progress", data=0.0, created=T0, updated=T1)),
        (ARTIFACT, catalogue.ArtifactDeleted(artifact_id=AID), None),
        (None, catalogue.ArtifactUpdated(artifact_id=AID, changes={"data": 1}, updated=T1), None),
    ],
)
def test_evolve_artifact(view, event, expected) -> None:
    assert evolve_artifact(view, event) == expected


def test_a_collection_id_is_the_same_on_every_rebuild_and_never_an_artifacts_id() -> None:
    assert collection_id_for(AID) == collection_id_for(AID) != AID
    assert collection_id_for(AID) != collection_id_for(uuid4())


def test_the_new_events_survive_encoding_with_any_json_value() -> None:
    value = {"n": [1, 2.5, None, True], "s": "\u00e9", "nested": {"k": []}}
    events = [
        catalogue.VariableCreated(variable_id=VID, name="v", value=value, tags=["a"], created=T0),
        catalogue.VariableUpdated(variable_id=VID, changes={"value": None}, updated=T1),
        catalogue.ArtifactCreated(artifact_id=AID, key="k", data=value, metadata_={"m": "v"}, flow_run_id=uuid4(),
                                  created=T0),
        catalogue.ArtifactUpdated(artifact_id=AID, changes={"description": None}, updated=T1),
    ]
    for event in events:
        assert catalogue.decode(catalogue.encode(event)) == event
        assert catalogue.decode(catalogue.to_json(catalogue.encode(event))) == event
