DROP TABLE channel_health;
DROP TABLE deliveries;
