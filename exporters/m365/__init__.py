"""``mspwatch m365-exporter``: Microsoft 365 service health, licences and security posture."""
