"""Months of history for the demo and the report tests, backfilled into Prometheus.

``python -m mspwatch.simulators.history --days 35 --out DIR --backfill DATA_DIR``.
"""
