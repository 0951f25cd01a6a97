"""Interface detail: traffic against the interface speed, errors, discards, status history."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus
from grafana_foundation_sdk.models import dashboard as dm

from mspwatch.dashboards import common as c
from mspwatch.dashboards.common import BY_DEVICE, pos, query

SEL = f'job="snmp", {BY_DEVICE}'
LEGEND = "{{device}} {{interface}}"
# Bytes per second over ifHighSpeed; {d} is receive or transmit.
UTILISATION = (
    "rate(snmp_interface_{d}_bytes_total{{{sel}}}[$__rate_interval])"
    " / on (instance, if_index) group_left snmp_interface_speed_bytes{{{sel}}}"
)


def both(what: str) -> list[prometheus.Dataquery]:
    """The receive (A) and transmit (B) rate of one interface counter, e.g. ``errors``."""
    return [
        query(f"rate(snmp_interface_receive_{what}_total{{{SEL}}}[$__rate_interval])", f"{LEGEND} in", "A"),
        query(f"rate(snmp_interface_transmit_{what}_total{{{SEL}}}[$__rate_interval])", f"{LEGEND} out", "B"),
    ]


def build() -> db.Dashboard:
    d = c.detail(
        "mspwatch-interface",
        "Interface detail",
        "Traffic against the interface speed, errors, discards and status history.",
        ["network"],
    ).link(c.link("SNMP devices", "mspwatch-snmp"))
    return c.panels(
        d,
        c.graph(
            "Traffic",
            "Bytes per second in and out per interface (ifHCInOctets / ifHCOutOctets).",
            both("bytes"),
            "Bps",
            pos(0, 0, 12, 8),
        ),
        c.graph(
            "Utilisation",
            "Traffic as a share of the interface speed (ifHighSpeed, snmp_interface_speed_bytes).",
            [
                query(UTILISATION.format(d="receive", sel=SEL), f"{LEGEND} in", "A"),
                query(UTILISATION.format(d="transmit", sel=SEL), f"{LEGEND} out", "B"),
            ],
            "percentunit",
            pos(12, 0, 12, 8),
        ),
        c.graph(
            "Errors",
            "Errored packets per second (ifInErrors / ifOutErrors).",
            both("errors"),
            "pps",
            pos(0, 8, 12, 8),
        ),
        c.graph(
            "Discards",
            "Discarded packets per second (ifInDiscards / ifOutDiscards).",
            both("discards"),
            "pps",
            pos(12, 8, 12, 8),
        ),
        c.timeline(
            "Operational status",
            'snmp_interface_oper_status{state="up"}: 1 up, 0 any other state (ifOperStatus).',
            query(f'snmp_interface_oper_status{{{SEL}, state="up"}}', LEGEND),
            pos(0, 16, 24, 8),
        ).mappings(
            [
                dm.ValueMap(
                    options={
                        "1": dm.ValueMappingResult(text="up", color=c.GREEN, index=0),
                        "0": dm.ValueMappingResult(text="not up", color=c.RED, index=1),
                    }
                )
            ]
        ),
    )
