"""The inventory's state at one instant: no I/O, no Prometheus.

What the SLO rules need from the inventory and Prometheus cannot know by itself: which
devices exist (a device without any sample is "no data", not missing), which sites are in a
maintenance window now, and whether the customer's contract hours are running now, in the
customer's time zone and DST-correct (``mspwatch.inventory``'s own window logic)::

    >>> from datetime import UTC, datetime
    >>> from mspwatch.inventory import Inventory
    >>> inv = Inventory.model_validate({"customers": [{
    ...     "name": "acme", "timezone": "Europe/London",
    ...     "contract": {"hours": "business", "business_hours":
    ...         {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "18:00"}},
    ...     "sites": [{"name": "hq", "devices": [{"name": "fw1", "address": "10.0.0.1", "role": "firewall"}]},
    ...               {"name": "york"}],
    ...     "maintenance": [{"name": "patching", "sites": ["hq"],
    ...                      "weekly": {"days": ["mon"], "start": "07:00", "end": "09:00"}}]}]})
    >>> s = customer_state(inv.customers[0], datetime(2026, 7, 6, 7, 30, tzinfo=UTC))  # Mon 08:30 BST
    >>> s.contract_hours, s.maintenance, s.devices
    (True, (('hq', True), ('york', False)), (('hq', 'fw1', 'firewall'),))
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mspwatch.inventory import Customer, Inventory, is_in_maintenance
from mspwatch.inventory.localtime import in_weekly


@dataclass(frozen=True)
class CustomerState:
    customer: str
    contract_hours: bool  # always True for a 24x7 contract
    maintenance: tuple[tuple[str, bool], ...]  # (site, open now), in inventory order
    devices: tuple[tuple[str, str, str], ...]  # (site, device, role)


def contract_hours_active(customer: Customer, ts: datetime) -> bool:
    """Whether the contract measures availability at ``ts`` (its business hours, or always)."""
    c = customer.contract
    if c.hours != "business" or c.business_hours is None:
        return True
    bh = c.business_hours
    return in_weekly(bh.days, bh.start, bh.end, customer.zone, ts)


def customer_state(customer: Customer, ts: datetime) -> CustomerState:
    """One customer's state at ``ts`` (an aware datetime).

    A window without ``sites`` covers every site, so each site has its own answer and the
    rules join on (customer, site) alone.
    """
    return CustomerState(
        customer=customer.name,
        contract_hours=contract_hours_active(customer, ts),
        maintenance=tuple((s.name, is_in_maintenance(customer, s.name, ts)) for s in customer.sites),
        devices=tuple((s.name, d.name, d.role) for s in customer.sites for d in s.devices),
    )


def inventory_state(inv: Inventory, ts: datetime, customer: str | None = None) -> list[CustomerState]:
    """Every customer's state (or only ``customer``'s), in inventory order."""
    return [customer_state(c, ts) for c in inv.customers if customer in (None, c.name)]
