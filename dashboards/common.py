"""Shared pieces of every dashboard: the datasource variable, the chained
customer/site/device variables, links that carry them, and panel helpers that always set
title, description, unit and the datasource (Grafana's dashboard-linter rules).
"""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
# Every link carries the time range and the variables of the dashboard it starts from
# (Grafana's global ``__all_variables``: ``var-customer=acme&var-site=hq...``).
VARS = "${__url_time_range}&${__all_variables}"
GREEN, AMBER, RED, BLUE, GREY = "green", "orange", "red", "blue", "text"
# The chained variables as label matchers, for the detail dashboards' selectors.
BY_CUSTOMER = 'customer=~"$customer"'
BY_SITE = f'{BY_CUSTOMER}, site=~"$site"'
BY_DEVICE = f'{BY_SITE}, device=~"$device"'


def url(uid: str) -> str:
    """The path of a dashboard in Grafana, with the variables and time range it inherits.

    >>> url("mspwatch-backup")
    '/d/mspwatch-backup?${__url_time_range}&${__all_variables}'
    """
    return f"/d/{uid}?{VARS}"


def thresholds(*steps: tuple[float | None, str]) -> db.ThresholdsConfig:
    """Absolute thresholds; the first step's value is None (the base colour)."""
    return (
        db.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=v, color=c) for v, c in steps])
    )


RED_ABOVE_ZERO = thresholds((None, GREEN), (1, RED))
STATES: list[
    dm.ValueMapping
] = [  # the worst-state scale 0 ok / 1 warning / 2 critical used by recording rules
    dm.ValueMap(
        options={
            "0": dm.ValueMappingResult(text="ok", color=GREEN, index=0),
            "1": dm.ValueMappingResult(text="warning", color=AMBER, index=1),
            "2": dm.ValueMappingResult(text="critical", color=RED, index=2),
        }
    )
]


# A site's state (customer_site:state:max) adds 3: inside a maintenance window, planned.
SITE_STATES: list[dm.ValueMapping] = [
    dm.ValueMap(
        options={
            "0": dm.ValueMappingResult(text="ok", color=GREEN, index=0),
            "1": dm.ValueMappingResult(text="degraded", color=AMBER, index=1),
            "2": dm.ValueMappingResult(text="down", color=RED, index=2),
            "3": dm.ValueMappingResult(text="maintenance", color=BLUE, index=3),
        }
    )
]


def query(expr: str, legend: str = "", ref: str = "A", *, instant: bool = False) -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(DS)
    if legend:
        q = q.legend_format(legend)
    return q.instant().format(PromQueryFormat.TABLE) if instant else q.range()


def link(title: str, uid: str) -> db.DashboardLink:
    return db.DashboardLink(title).type(dm.DashboardLinkType.LINK).url(url(uid)).tooltip(f"open {title}")


def pos(x: int, y: int, w: int, h: int) -> dm.GridPos:
    return dm.GridPos(x=x, y=y, w=w, h=h)


def tile(
    title: str, description: str, expr: str, detail: str, at: dm.GridPos, steps: db.ThresholdsConfig
) -> stat.Panel:
    """A big background-coloured count for the wall screen, linking to its detail."""
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .with_target(query(expr))
        .unit("none")
        .decimals(0)
        .thresholds(steps)
        .color_mode(cm.BigValueColorMode.BACKGROUND)
        .graph_mode(cm.BigValueGraphMode.NONE)
        .text_mode(cm.BigValueTextMode.VALUE_AND_NAME)
        .justify_mode(cm.BigValueJustifyMode.CENTER)
        .reduce_options(common_reduce())
        .links([db.DashboardLink(f"{title}: detail").url(url(detail))])
        .data_links([db.DashboardLink(f"{title}: detail").url(url(detail))])
        .grid_pos(at)
    )


def common_reduce() -> cogbuilder.Builder[cm.ReduceDataOptions]:
    return cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def graph(
    title: str, description: str, targets: Sequence[prometheus.Dataquery], unit: str, at: dm.GridPos
) -> timeseries.Panel:
    p = timeseries.Panel().title(title).description(description).datasource(DS).unit(unit).grid_pos(at)
    for t in targets:
        p = p.with_target(t)
    return p


def grid(
    title: str, description: str, targets: Sequence[prometheus.Dataquery], unit: str, at: dm.GridPos
) -> table.Panel:
    p = table.Panel().title(title).description(description).datasource(DS).unit(unit).grid_pos(at)
    for t in targets:
        p = p.with_target(t)
    return p


def series(
    title: str, description: str, expr: str, legend: str, unit: str, at: dm.GridPos
) -> timeseries.Panel:
    """A graph of one range query, a line per series named by ``legend``."""
    return graph(title, description, [query(expr, legend)], unit, at)


def rows(title: str, description: str, expr: str, unit: str, at: dm.GridPos) -> table.Panel:
    """A table of one instant query: a row per series it returns now."""
    return grid(title, description, [query(expr, instant=True)], unit, at)


def timeline(
    title: str,
    description: str,
    target: prometheus.Dataquery,
    at: dm.GridPos,
    mappings: list[dm.ValueMapping] | None = None,
) -> statetimeline.Panel:
    return (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .with_target(target)
        .unit("none")
        .mappings(STATES if mappings is None else mappings)
        .thresholds(thresholds((None, GREEN), (1, AMBER), (2, RED)))
        .grid_pos(at)
    )


def variables(d: db.Dashboard, *, levels: Sequence[str] = ("customer", "site", "device")) -> db.Dashboard:
    """The `datasource` variable and the chained customer -> site -> device variables.

    Each level's values are filtered by the ones above it, so picking a customer narrows the
    sites and a site narrows the devices.
    """
    d = d.with_variable(db.DatasourceVariable("datasource").label("Data source").type("prometheus"))
    source = {
        "customer": 'probe_success{job="icmp"}',
        "site": 'probe_success{job="icmp", customer=~"$customer"}',
        "device": 'probe_success{job="icmp", customer=~"$customer", site=~"$site"}',
    }
    for name in levels:
        d = d.with_variable(
            db.QueryVariable(name)
            .label(name.capitalize())
            .datasource(DS)
            .query(f"label_values({source[name]}, {name})")
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(dm.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .current(dm.VariableOption(selected=True, text="All", value="$__all"))
        )
    return d


def detail(
    uid: str,
    title: str,
    description: str,
    tags: Sequence[str],
    *,
    levels: Sequence[str] = ("customer", "site", "device"),
) -> db.Dashboard:
    """A detail dashboard: :func:`dashboard` with the datasource and chained ``levels`` variables."""
    return variables(dashboard(uid, title, description, tags), levels=levels)


def panels(d: db.Dashboard, *each: cogbuilder.Builder[dm.Panel]) -> db.Dashboard:
    """``d`` with ``each`` panel added in order."""
    for panel in each:
        d = d.with_panel(panel)
    return d


def dashboard(uid: str, title: str, description: str, tags: Sequence[str]) -> db.Dashboard:
    """A read-only dashboard with a fixed uid, the last 24 h and a one-minute refresh."""
    return (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["mspwatch", *tags])
        .readonly()
        .time("now-24h", "now")
        .refresh("1m")
        .timezone("browser")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .link(
            db.DashboardLink("mspwatch")
            .type(dm.DashboardLinkType.DASHBOARDS)
            .tags(["mspwatch"])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )
