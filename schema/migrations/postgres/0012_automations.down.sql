DROP TABLE automation_resources;
DROP TABLE automation_tags;
DROP TABLE automations;
