"""Grafana dashboards as code: builders per dashboard, the committed JSON they produce and
the provisioning files Grafana reads (``python -m mspwatch.dashboards`` regenerates the JSON).
"""
