-- Read model of automations (projections/automations.py), folded from the automation-<id>
-- streams. Each row keeps its whole view as JSON in `view` and copies what filters and sorts
-- need into columns; ids are canonical text and times microseconds since the Unix epoch (UTC).
-- Names are not unique, as in Prefect.
CREATE TABLE automations (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    view    BLOB NOT NULL
);
CREATE INDEX automations_name ON automations (name);

-- An automation's tags, one row each.
CREATE TABLE automation_tags (
    automation_id TEXT NOT NULL,
    tag           TEXT NOT NULL,
    PRIMARY KEY (automation_id, tag)
);

-- Prefect's automation_related_resource: the resources an automation is related to
-- (GET /automations/related-to/{resource_id}); `owned` is 1 when the resource owns it.
CREATE TABLE automation_resources (
    automation_id TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    owned         INTEGER NOT NULL,
    PRIMARY KEY (automation_id, resource_id)
);
CREATE INDEX automation_resources_resource ON automation_resources (resource_id);
