"""Backup job exporter: Veeam B&R REST API v1, restic and a vendor-neutral drop folder."""
