DROP TABLE artifact_collections;
DROP TABLE artifacts;
DROP TABLE variable_tags;
DROP TABLE variables;
