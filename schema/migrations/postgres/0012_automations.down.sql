DROP TABLE automation_related_resources;
DROP TABLE automation_tags;
DROP TABLE automations;
