DROP TABLE server_configuration;
DROP TABLE block_document_references;
DROP TABLE block_documents;
DROP TABLE block_schema_capabilities;
DROP TABLE block_schemas;
DROP TABLE block_types;
