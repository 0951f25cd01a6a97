"""The detail dashboards the wall screen links to, one module each: customer status, active
alerts, SNMP devices and interfaces, backups, patch compliance, Microsoft 365, SLA and error
budget, and the exporters' own health. Each module's ``build()`` returns its dashboard;
selectors carry the chained ``$customer`` / ``$site`` / ``$device`` variables
(:data:`mspwatch.dashboards.common.BY_CUSTOMER` and the like).
"""
