"""One module per API resource, as in the Prefect API; each exports ``routes``."""
