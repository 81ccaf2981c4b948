-- Read models of blocks (projections/blocks.py), folded from the one "blocks" stream, and the
-- server's configuration table. Each projection row keeps its view as JSON in `view` and copies
-- what filters and sorts need into columns; ids are canonical text and times microseconds since
-- the Unix epoch (UTC), as in 0002. Slugs, checksums and document names are kept unique by the
-- commands (decided on the one stream), so no index is UNIQUE: replaying a log pushed from
-- elsewhere never fails an append (reads then take the oldest).
CREATE TABLE block_types (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    slug    TEXT NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    view    BLOB NOT NULL
);
CREATE INDEX block_types_slug ON block_types (slug);

CREATE TABLE block_schemas (
    id            TEXT PRIMARY KEY,
    checksum      TEXT NOT NULL,
    block_type_id TEXT NOT NULL,
    version       TEXT NOT NULL,
    created       INTEGER NOT NULL,
    view          BLOB NOT NULL
);
CREATE INDEX block_schemas_checksum ON block_schemas (checksum, created);
CREATE INDEX block_schemas_type ON block_schemas (block_type_id);

CREATE TABLE block_schema_capabilities (
    block_schema_id TEXT NOT NULL,
    capability      TEXT NOT NULL,
    PRIMARY KEY (block_schema_id, capability)
);

-- `view` holds the document's values only as a Fernet token (projections/block_secrets.py).
CREATE TABLE block_documents (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    block_type_id   TEXT NOT NULL,
    block_schema_id TEXT NOT NULL,
    is_anonymous    INTEGER NOT NULL,
    created         INTEGER NOT NULL,
    updated         INTEGER NOT NULL,
    view            BLOB NOT NULL
);
CREATE INDEX block_documents_type_name ON block_documents (block_type_id, name);
CREATE INDEX block_documents_schema ON block_documents (block_schema_id);
CREATE INDEX block_documents_name ON block_documents (name);

-- A document nested in another under a field name (Prefect's block_document_reference).
CREATE TABLE block_document_references (
    parent_id    TEXT NOT NULL,
    name         TEXT NOT NULL,
    reference_id TEXT NOT NULL,
    PRIMARY KEY (parent_id, name)
);
CREATE INDEX block_document_references_reference ON block_document_references (reference_id);

-- Not a projection: settings the server generates once and keeps (the block encryption key when
-- RUNLOG_SERVER_ENCRYPTION_KEY is not set), outside the log so that an exported log never
-- carries the key of its own ciphertext. Written with INSERT ... ON CONFLICT DO NOTHING, so of
-- two processes starting at once one key wins and both read it.
CREATE TABLE server_configuration (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
