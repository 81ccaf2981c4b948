DROP TABLE projection_versions;
