"""The blocks folds, pure: a type's and a document's view from their events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from runlog.projections.blocks import evolve_document, evolve_type
from runlog.schema import events as catalogue

T0 = datetime(2026, 3, 1, tzinfo=UTC)
TYPE_ID, SCHEMA_ID, OTHER_SCHEMA, DOC_ID, CHILD = (uuid.uuid4() for _ in range(5))


def test_a_type_is_created_updated_with_known_fields_only_and_deleted() -> None:
    view = evolve_type(None, catalogue.BlockTypeCreated(block_type_id=TYPE_ID, name="Slack", slug="slack", created=T0))
    assert view is not None and view.updated == T0 and view.description is None
    later = T0 + timedelta(seconds=5)
    view = evolve_type(view, catalogue.BlockTypeUpdated(
        block_type_id=TYPE_ID, changes={"description": "d", "slug": "renamed", "logo_url": 7}, updated=later,
    ))
    assert view is not None and (view.description, view.slug, view.logo_url, view.updated) == ("d", "slack", None, later)
    assert evolve_type(view, catalogue.BlockTypeDeleted(block_type_id=TYPE_ID)) is None
    assert evolve_type(None, catalogue.BlockTypeUpdated(block_type_id=TYPE_ID, changes={}, updated=later)) is None


def test_a_document_keeps_its_name_and_type_and_takes_each_updates_values_schema_and_references() -> None:
    created = catalogue.BlockDocumentCreated(
        block_document_id=DOC_ID, name="ops", block_schema_id=SCHEMA_ID, block_type_id=TYPE_ID,
        block_type_name="Slack", data="token-1", references={"inner": CHILD}, created=T0,
    )
    view = evolve_document(None, created)
    assert view is not None and (view.data, view.references, view.is_anonymous) == ("token-1", {"inner": CHILD}, False)
    updated = catalogue.BlockDocumentUpdated(
        block_document_id=DOC_ID, block_schema_id=OTHER_SCHEMA, data="token-2", updated=T0 + timedelta(1),
    )
    view = evolve_document(view, updated)
    assert view is not None
    assert (view.name, view.block_type_id, view.block_schema_id, view.data, view.references) == (
        "ops", TYPE_ID, OTHER_SCHEMA, "token-2", {},
    )
    assert view.created == T0 and view.updated == T0 + timedelta(1)
    assert evolve_document(view, catalogue.BlockDocumentDeleted(block_document_id=DOC_ID)) is None
    assert evolve_document(None, updated) is None
