"""The NOC wall screen: kiosk mode at 1920x1080 without scrolling.

Two rows of big tiles count what is red now (green at zero, red from one), each linking to
the dashboard that explains it; below them one row per customer with its worst state per
area. Every figure is a recording rule of alertrules/recording.yml (on the one definition of
"down" in alertrules/availability.yml), so the screen costs a handful of cheap queries however
many customers there are.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import table
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from mspwatch.dashboards import common as c

UID = "mspwatch-noc"
# (title, description, recording rule, detail dashboard uid)
TILES: tuple[tuple[str, str, str, str], ...] = (
    (
        "Critical alerts",
        "Alerts of severity critical firing now, all customers (ALERTS).",
        "fleet:alerts_critical_firing:count",
        "mspwatch-alerts",
    ),
    (
        "Sites down",
        "Customer sites whose gateways (core, router, uplink, firewall; every device where a site"
        " has none) answer neither ping nor SNMP, outside maintenance windows"
        " (customer_site:state:max 2, alertrules/availability.yml). Red from 1.",
        "fleet:sites_down:count",
        "mspwatch-status",
    ),
    (
        "Devices down",
        "Devices that answer neither ping nor SNMP in the last minute, outside maintenance"
        " windows (customer_site_device:reachable:max 0), as DeviceUnreachable and the report"
        " mean it. Red from 1.",
        "fleet:devices_down:count",
        "mspwatch-snmp",
    ),
    (
        "Scrapes failing",
        "Monitoring targets Prometheus cannot scrape now (up 0): blind spots, not outages.",
        "fleet:targets_down:count",
        "mspwatch-self",
    ),
    (
        "Backups failed (24 h)",
        "Backup jobs whose last result was failed at any time in the last 24 hours.",
        "fleet:backup_jobs_failed_24h:count",
        "mspwatch-backup",
    ),
    (
        "RPO breaches",
        "Backup jobs whose newest restore point is older than their RPO (backup_job_within_rpo 0).",
        "fleet:backup_rpo_breaches:count",
        "mspwatch-backup",
    ),
    (
        "Non-compliant devices",
        "Managed devices out of patch compliance (patch_device_compliant 0).",
        "fleet:patch_devices_noncompliant:count",
        "mspwatch-patch",
    ),
    (
        "M365 workloads degraded",
        "Microsoft 365 workloads in an impact state, summed over tenants (m365_service_degraded 1).",
        "fleet:m365_workloads_degraded:count",
        "mspwatch-m365",
    ),
)
TILE_W, TILE_H = 6, 6
# Kiosk mode at 1080 px shows 27 grid units (30 px + 8 px margin each) without scrolling.
SCREEN_UNITS = 27


def customers_panel(y: int) -> table.Panel:
    """One row per customer, a column per area, each cell its worst state (ok/warning/critical)."""
    cell = cm.TableColoredBackgroundCellOptions(mode=cm.TableCellBackgroundDisplayMode.BASIC)
    return (
        table.Panel()
        .title("Customers: worst state per area")
        .description(
            "customer_area:state:max: 0 ok, 1 warning, 2 critical per customer and area "
            "(network, backup, patch, m365, alerts). Click a customer for its status board."
        )
        .datasource(c.DS)
        .with_target(c.query("customer_area:state:max", instant=True))
        .unit("none")
        .mappings(c.STATES)
        .thresholds(c.thresholds((None, c.GREEN), (1, c.AMBER), (2, c.RED)))
        .cell_options(cell)
        .align(cm.FieldTextAlignment.CENTER)
        .with_transformation(
            dm.DataTransformerConfig(
                id_val="groupingToMatrix",
                options={"columnField": "area", "rowField": "customer", "valueField": "Value"},
            )
        )
        .data_links(
            [
                db.DashboardLink("Customer status").url(
                    "/d/mspwatch-status?${__url_time_range}&var-customer=${__data.fields[0]}"
                )
            ]
        )
        .show_header(True)
        .grid_pos(c.pos(0, y, 24, SCREEN_UNITS - y))
    )


def build() -> db.Dashboard:
    d = c.dashboard(
        UID,
        "NOC overview",
        "Wall screen: what is red now across all customers; every tile links to its detail.",
        ["noc"],
    )
    d = c.variables(d, levels=()).refresh("30s").time("now-1h", "now")
    per_row = 24 // TILE_W
    for i, (title, description, expr, detail) in enumerate(TILES):
        at = c.pos((i % per_row) * TILE_W, (i // per_row) * TILE_H, TILE_W, TILE_H)
        d = d.with_panel(c.tile(title, description, expr, detail, at, c.RED_ABOVE_ZERO))
    rows = (len(TILES) + per_row - 1) // per_row
    return d.with_panel(customers_panel(rows * TILE_H))
