"""Inventory state -> metric families (pure).

Sample output, one customer with a firewall at hq, hq in its patching window, in business
hours::

    inventory_device_info{customer="acme",device="fw1",role="firewall",site="hq"} 1.0
    inventory_maintenance_active{customer="acme",site="hq"} 1.0
    inventory_maintenance_active{customer="acme",site="york"} 0.0
    inventory_contract_measuring{customer="acme"} 1.0

The customer, site and device labels are the inventory's own names, the same values
``mspwatch targets`` writes into the file_sd target labels, so the rules join on them.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client.core import GaugeMetricFamily, Metric

from .state import CustomerState

DEVICE_INFO = "inventory_device_info"
MAINTENANCE = "inventory_maintenance_active"
CONTRACT_HOURS = "inventory_contract_measuring"

HELP = {
    DEVICE_INFO: "A device of the inventory (value 1): the devices the availability counts, "
    "samples or not (customers[].sites[].devices[]).",
    MAINTENANCE: "1 while a maintenance window covering the site is open in the customer's time "
    "zone, else 0 (customers[].maintenance[]; a window without sites covers every site).",
    CONTRACT_HOURS: "1 while the contract measures availability (its business hours in the "
    "customer's time zone; always 1 for 24x7), else 0 (customers[].contract).",
}


def families(states: Sequence[CustomerState]) -> list[Metric]:
    """The three families, every customer in each (zero rather than nothing)."""
    info = GaugeMetricFamily(DEVICE_INFO, HELP[DEVICE_INFO], labels=["customer", "site", "device", "role"])
    maint = GaugeMetricFamily(MAINTENANCE, HELP[MAINTENANCE], labels=["customer", "site"])
    hours = GaugeMetricFamily(CONTRACT_HOURS, HELP[CONTRACT_HOURS], labels=["customer"])
    for s in states:
        for site, device, role in s.devices:
            info.add_metric([s.customer, site, device, role], 1.0)
        for site, active in s.maintenance:
            maint.add_metric([s.customer, site], 1.0 if active else 0.0)
        hours.add_metric([s.customer], 1.0 if s.contract_hours else 0.0)
    return [info, maint, hours]
