"""Inventory-state exporter: what Prometheus cannot know (devices, maintenance, contract hours)."""
