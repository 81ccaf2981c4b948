"""Bodies of /block_types, /block_schemas and /block_documents, with Prefect 3.8's names and
defaults. As in Prefect, create and update bodies forbid unknown fields; filters do too."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from .filters import NonNegative, Operator

NAME_PATTERN = "^[^/%&><]+$"
"""Prefect's Name: no '/', '%', '&', '>' or '<'."""
SLUG_PATTERN = "^[a-z0-9-]*$"
"""Prefect's block type slugs and document names: lowercase letters, numbers and dashes."""

Name = Annotated[str, msgspec.Meta(pattern=NAME_PATTERN)]
Slug = Annotated[str, msgspec.Meta(pattern=SLUG_PATTERN)]
DocumentName = Annotated[str, msgspec.Meta(pattern=SLUG_PATTERN)]


class _Body(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class BlockTypeCreate(_Body, kw_only=True):
    name: Name
    slug: Slug
    logo_url: str | None = None
    documentation_url: str | None = None
    description: str | None = None
    code_example: str | None = None


class BlockTypeUpdate(_Body, kw_only=True):
    """Only the fields sent change (UNSET: not sent)."""

    logo_url: str | None | msgspec.UnsetType = msgspec.UNSET
    documentation_url: str | None | msgspec.UnsetType = msgspec.UNSET
    description: str | None | msgspec.UnsetType = msgspec.UNSET
    code_example: str | None | msgspec.UnsetType = msgspec.UNSET


class BlockSchemaCreate(_Body, kw_only=True):
    fields: dict[str, Any] = msgspec.field(default_factory=dict)
    block_type_id: UUID
    capabilities: list[str] = msgspec.field(default_factory=list)
    version: str = "non-versioned"


class BlockDocumentCreate(_Body, kw_only=True):
    name: DocumentName | None = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    block_schema_id: UUID
    block_type_id: UUID
    is_anonymous: bool = False

    def __post_init__(self) -> None:
        # Prefect's validate_name_present_on_nonanonymous_blocks, a 422 like any bad field.
        if not self.is_anonymous and not self.name:
            raise ValueError("Names must be provided for block documents.")


class BlockDocumentUpdate(_Body, kw_only=True):
    block_schema_id: UUID | None = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    merge_existing_data: bool = True


# -- filters ----------------------------------------------------------------------------------


class AnyId(_Body, kw_only=True):
    any_: list[UUID] | None = None


class AnyText(_Body, kw_only=True):
    any_: list[str] | None = None


class LikeText(_Body, kw_only=True):
    like_: str | None = None


class BlockTypeFilterSlug(_Body, kw_only=True):
    any_: list[str] | None = None


class BlockTypeFilter(_Body, kw_only=True):
    name: LikeText | None = None
    slug: BlockTypeFilterSlug | None = None


class BlockSchemaFilterCapabilities(_Body, kw_only=True):
    all_: list[str] | None = None


class BlockSchemaFilter(_Body, kw_only=True):
    operator: Operator = "and_"
    block_type_id: AnyId | None = None
    block_capabilities: BlockSchemaFilterCapabilities | None = None
    id: AnyId | None = None
    version: AnyText | None = None


class BlockDocumentFilterIsAnonymous(_Body, kw_only=True):
    eq_: bool | None = None


class BlockDocumentFilterName(_Body, kw_only=True):
    any_: list[str] | None = None
    like_: str | None = None


class BlockDocumentFilter(_Body, kw_only=True):
    operator: Operator = "and_"
    id: AnyId | None = None
    # Prefect's default: anonymous documents (nested values saved by the client) are left out.
    is_anonymous: BlockDocumentFilterIsAnonymous | None = msgspec.field(
        default_factory=lambda: BlockDocumentFilterIsAnonymous(eq_=False)
    )
    block_type_id: AnyId | None = None
    name: BlockDocumentFilterName | None = None


BlockDocumentSort = Literal["NAME_DESC", "NAME_ASC", "BLOCK_TYPE_AND_NAME_ASC"]


class BlockTypeFilterRequest(msgspec.Struct, kw_only=True):
    """A top-level ``null`` means the default, as FastAPI treats it."""

    block_types: BlockTypeFilter | None = None
    block_schemas: BlockSchemaFilter | None = None
    limit: int | None = None
    offset: NonNegative | None = None


class BlockSchemaFilterRequest(msgspec.Struct, kw_only=True):
    block_schemas: BlockSchemaFilter | None = None
    limit: int | None = None
    offset: NonNegative | None = None


class BlockDocumentCountRequest(msgspec.Struct, kw_only=True):
    block_documents: BlockDocumentFilter | None = None
    block_types: BlockTypeFilter | None = None
    block_schemas: BlockSchemaFilter | None = None


class BlockDocumentFilterRequest(BlockDocumentCountRequest, kw_only=True):
    include_secrets: bool = False
    sort: BlockDocumentSort | None = None
    limit: int | None = None
    offset: NonNegative | None = None
