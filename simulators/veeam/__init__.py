"""A Veeam Backup & Replication REST API v1 simulator, written from the documented API."""
