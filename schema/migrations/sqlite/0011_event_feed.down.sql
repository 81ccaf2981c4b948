DROP TABLE event_feed_resources;
DROP TABLE event_feed;
DROP TABLE projection_checkpoints;
