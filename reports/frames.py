"""Queries -> frames: what the report asks Prometheus, and the plain tables it gets back.

Cheap by design, at 100 customers as at one:

- A :class:`Batch` asks each question once for every customer that shares a month (the same
  time zone): one ``customer=~"a|b|..."`` query, split by the ``customer`` label, instead of
  one query per customer.
- Availability reads the recorded series ``customer_site_device:reachable:max``
  (alertrules/availability.yml: 1, 0, or absent per minute) with ``count_over_time`` and
  ``sum_over_time`` per device and day: every sample is read once, aggregated on the server.
  A device-day with all minutes present and up costs two numbers on the wire. Only the others
  are asked minute by minute, and only for their exceptions (down minutes, and the first
  missing and first present minute of each gap), so even a gap across the whole estate costs
  a few points per device.
- A customer without the recorded series at the start of the month (rules loaded later) is
  judged on the raw samples with :data:`REACH`, the rule's own expression; the code is the
  same, only the expression differs, and the report says which was used.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from mspwatch.reports.availability import DOWN, NO_DATA, UP, States
from mspwatch.reports.contract import Month
from mspwatch.reports.query import Labels, NoDataError, Prometheus, RangeSeries, Sample, quote

RECORDED = "customer_site_device:reachable:max"
# Recorded beside it by the same rule group (alertrules/availability.yml): 1 in each down
# minute and nothing otherwise; and per customer, the devices with a sample in the minute.
UNREACHABLE = "customer_site_device:unreachable:max"
REPORTING = "customer:reporting_devices:count"
# "Down" as the alerting means it (alertrules/snmp.yml DeviceUnreachable, recorded as
# RECORDED by alertrules/availability.yml): neither ping nor SNMP answers. Each minute is
# judged on its last sample (last_over_time over the minute that ends at the evaluation
# time), so backfilled data without staleness markers and a crashed scrape both show their
# gaps minute for minute.
REACH = (
    "max by (customer, site, device) ("
    'last_over_time(probe_success{{job="icmp",{sel}}}[1m]{off}) '
    'or last_over_time(snmp_up{{job="snmp",{sel}}}[1m]{off}))'
)
# The patch exporter's names (exporters/patch/mapping.py).
PATCH_COMPLIANT = "patch_device_compliant"
PATCH_OVERDUE = "patch_device_overdue_updates"
PATCH_LAST_CONTACT = "patch_device_last_contact_timestamp_seconds"
PATCH_AV_ENABLED = "patch_device_av_enabled"
DAY = 86400
MAX_CUSTOMERS = 100  # per query: keeps a selector well under VictoriaMetrics's 16 KB limit
# per query that reads every recorded sample of the month: 10 customers x 20 devices is
# 8.6 M samples, well inside Prometheus's --query.timeout (2 min) even on a loaded machine
# (100 customers in one query timed out there at load 22). It is also the group whose
# minute arrays are held at once (Batch.device_states), so memory does not grow with the
# number of customers; the count and the sum of a group run two at a time.
READ_CUSTOMERS = 10
T = TypeVar("T")


@dataclass(frozen=True)
class DeviceRef:
    site: str
    device: str
    role: str


Key = tuple[str, str, str]  # customer, site, device
Tally = npt.NDArray[np.int64]  # one number per tile of the month


def _key(labels: Labels) -> Key:
    d = dict(labels)
    return (d.get("customer", ""), d.get("site", ""), d.get("device", ""))


@dataclass(frozen=True)
class Source:
    """Where each minute's reachability comes from: the recorded series, or the raw samples.

    ``(lo, hi]`` windows: a ``[N ms - 1]`` range holds the samples after ``lo`` up to ``hi``
    on Prometheus 2.x (closed window) and VictoriaMetrics (left-open) alike, so a recorded
    sample stamped on a minute boundary counts for the minute it ends, once.

    >>> Source(True).tile("count", 'customer="a"', 86400)
    'count_over_time(customer_site_device:reachable:max{customer="a"}[86399999ms])'
    >>> Source(True).minute('customer="a"')
    'last_over_time(customer_site_device:reachable:max{customer="a"}[59999ms])'
    """

    recorded: bool
    name: str = RECORDED

    @property
    def label(self) -> str:
        return "recorded" if self.recorded else "raw"

    def minute(self, sel: str, off: str = "") -> str:
        """The minute ending at each evaluation time: 1, 0, or nothing."""
        if self.recorded:
            return f"last_over_time({self.name}{{{sel}}}[59999ms]{off})"
        return REACH.format(sel=sel, off=off)

    def tile(self, fn: str, sel: str, seconds: int) -> str:
        """``count`` (minutes with data) or ``sum`` (minutes up) in the ``seconds`` before."""
        if self.recorded:
            return f"{fn}_over_time({self.name}{{{sel}}}[{seconds * 1000 - 1}ms])"
        # A subquery includes both ends: end it a step early for one point per minute.
        return f"{fn}_over_time(({REACH.format(sel=sel, off='')})[{seconds - 60}s:1m])"

    def exceptions(self, sel: str) -> str:
        """Per minute: ``edge="down"`` (answered 0), ``"gone"`` (first minute without data
        after one with), ``"back"`` (first minute with data after one without)."""
        now, before = self.minute(sel), self.minute(sel, " offset 1m")
        return (
            f'label_replace({now} == 0, "edge", "down", "", "")'
            f' or label_replace({before} unless {now}, "edge", "gone", "", "")'
            f' or label_replace({now} unless {before}, "edge", "back", "", "")'
        )


def customer_selector(customers: Sequence[str], extra: str = "") -> str:
    """``customer="a"`` for one, ``customer=~"a|b"`` (literal names) for several.

    >>> customer_selector(["a.b", "c"], 'job="x"')
    'customer=~"a\\\\\\\\.b|c",job="x"'
    """
    if len(customers) == 1:
        sel = f"customer={quote(customers[0])}"
    else:
        sel = f"customer=~{quote('|'.join(re.escape(c) for c in customers))}"
    return sel + (f",{extra}" if extra else "")


def _chunks(items: Sequence[str], size: int = MAX_CUSTOMERS) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


@dataclass(frozen=True)
class Episode:
    """A stretch of consecutive minutes in which a series was present (or 1)."""

    labels: dict[str, str]
    start: int
    end: int

    @property
    def minutes(self) -> int:
        return (self.end - self.start) // 60


@dataclass
class Batch:
    """The month's questions for customers sharing one month span, each asked once.

    Every method answers for one customer; the first call of a kind asks for all of them
    (in selectors of at most :data:`MAX_CUSTOMERS`) and keeps the answers.
    """

    prom: Prometheus
    month: Month
    customers: Sequence[str]
    recorded: str = RECORDED
    workers: int = 2  # concurrent requests: Prometheus evaluates each query on one core
    _memo: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict, repr=False)
    sources: dict[str, Source] = field(default_factory=dict)
    _decided: bool = field(default=False, repr=False)
    # The minute arrays of one group of READ_CUSTOMERS customers at a time (first index,
    # arrays): memory stays flat however many customers the batch holds.
    _states: tuple[int, dict[Key, States]] | None = field(default=None, repr=False)
    # Per customer, the start of each tile whose devices were read one by one (every other
    # tile was judged from the customer's series and the down minutes alone).
    read_in_full: dict[str, list[int]] = field(default_factory=dict)
    # What the rules record beside RECORDED (reporting devices, down minutes).
    companions: tuple[str, str] = (REPORTING, UNREACHABLE)

    def _map(self, fn: Callable[[T], Any], items: Iterable[T]) -> list[Any]:
        items = list(items)
        if self.workers <= 1 or len(items) <= 1:
            return [fn(i) for i in items]
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(fn, items))

    def _by_customer(
        self, key: tuple[Any, ...], ask: Callable[[list[str]], list[Any]]
    ) -> dict[str, list[Any]]:
        """``ask`` for each chunk of the customers, the answers split by their ``customer``
        label; remembered under ``key``."""
        if key not in self._memo:
            out: dict[str, list[Any]] = {}
            for part in self._map(ask, _chunks(self.customers)):
                for item in part:
                    out.setdefault(item.label("customer"), []).append(item)
            self._memo[key] = out
        return dict(self._memo[key])

    def _instant(self, template: str, at: int, extra: str = "") -> dict[str, list[Sample]]:
        """``template`` with ``$sel`` for the customers' selector, split by customer."""
        return self._by_customer(
            ("instant", template, at, extra),
            lambda cs: self.prom.instant(template.replace("$sel", customer_selector(cs, extra)), at),
        )

    def _range(self, template: str, start: int, end: int, step: int) -> dict[str, list[RangeSeries]]:
        return self._by_customer(
            ("range", template, start, end, step),
            lambda cs: self.prom.range(template.replace("$sel", customer_selector(cs)), start, end, step),
        )

    # --- availability -----------------------------------------------------------------
    def require_data(self, customer: str) -> None:
        """Raise :class:`QueryError` when the customer has no reachability sample at all."""
        self._reach()
        if customer not in self.sources:
            raise NoDataError(
                f"Prometheus at {self.prom.url} has no data for customer {customer!r} in {self.month.label}"
            )

    def source(self, customer: str) -> Source:
        self._reach()
        return self.sources[customer]

    def discover_devices(self, customer: str) -> list[DeviceRef]:
        """Devices with any reachability sample in the month (when no inventory is given)."""
        secs = self.month.end - self.month.start
        found: dict[tuple[str, str], str] = {}
        for metric, job in (("probe_success", "icmp"), ("snmp_up", "snmp")):
            tmpl = (
                "group by (customer, site, device, role)"
                f' (last_over_time({metric}{{job="{job}",$sel}}[{secs}s]))'
            )
            for s in self._instant(tmpl, self.month.end).get(customer, []):
                found.setdefault((s.label("site"), s.label("device")), s.label("role"))
        return [DeviceRef(site, dev, role) for (site, dev), role in sorted(found.items())]

    def _reach(self) -> None:
        """Decide each customer's source: recorded when the series has a sample in the
        month's first hour (so the rules ran all month), else raw when raw samples exist."""
        if self._decided:
            return
        self._decided = True
        m, secs = self.month, self.month.end - self.month.start

        def customers(expr: str, at: int, names: Sequence[str]) -> set[str]:
            found: set[str] = set()
            for cs in _chunks(names):
                found |= {
                    s.label("customer")
                    for s in self.prom.instant(expr.replace("$sel", customer_selector(cs)), at)
                }
            return found

        rec = f"group by (customer) (count_over_time({self.recorded}{{$sel}}[3600s]))"
        recorded = customers(rec, m.start + 3600, self.customers)
        rest = [c for c in self.customers if c not in recorded]
        raw = (
            customers(
                f"group by (customer) (last_over_time(probe_success{{$sel}}[{secs}s])"
                f" or last_over_time(snmp_up{{$sel}}[{secs}s]))",
                m.end,
                rest,
            )
            if rest
            else set()
        )
        late = [c for c in rest if c not in raw]
        if late:
            # No raw samples: a recorded series that begins mid-month (history rebuilt from
            # the rules only) is still the best there is.
            recorded |= customers(
                f"group by (customer) (count_over_time({self.recorded}{{$sel}}[{secs}s]))", m.end, late
            )
        for c in self.customers:
            if c in recorded:
                self.sources[c] = Source(True, self.recorded)
            elif c in raw:
                self.sources[c] = Source(False, self.recorded)

    def device_states(self, customer: str, devices: list[DeviceRef]) -> dict[tuple[str, str], States]:
        """Per (site, device): the month minute by minute, UP / DOWN / NO_DATA.

        Read for the customer's group of :data:`READ_CUSTOMERS` (in the batch's order) and kept
        until a customer of another group is asked: ask in the batch's order to read each once.
        """
        self._reach()
        n = self.month.minutes
        if customer not in self.customers:
            return {(d.site, d.device): np.full(n, NO_DATA, dtype=np.int8) for d in devices}
        first = list(self.customers).index(customer) // READ_CUSTOMERS * READ_CUSTOMERS
        if self._states is None or self._states[0] != first:
            self._states = None  # let the previous group go before reading the next
            self._states = (first, self._group_states(self.customers[first : first + READ_CUSTOMERS]))
        got = self._states[1]
        return {
            (d.site, d.device): got.get((customer, d.site, d.device), np.full(n, NO_DATA, dtype=np.int8))
            for d in devices
        }

    def _tiles(self) -> list[tuple[int, int]]:
        """The month as (lo, hi] windows: whole UTC-length days from the start, then the rest
        (a DST month is an hour longer or shorter than its days)."""
        m = self.month
        ends = list(range(m.start + DAY, m.end + 1, DAY))
        if not ends or ends[-1] != m.end:
            ends.append(m.end)
        return list(zip([m.start, *ends[:-1]], ends, strict=True))

    def _group_states(self, group: Sequence[str]) -> dict[Key, States]:
        tiles = self._tiles()
        by_source: dict[Source, list[str]] = {}
        for c in group:
            if c in self.sources:
                by_source.setdefault(self.sources[c], []).append(c)
        out: dict[Key, States] = {}
        for src, customers in sorted(by_source.items(), key=lambda kv: kv[0].label):
            out |= self._states_from(src, customers, tiles)
        return out

    def _states_from(
        self, src: Source, customers: list[str], tiles: list[tuple[int, int]]
    ) -> dict[Key, States]:
        known: dict[Key, dict[int, States]] = {}
        if src.recorded and src.name == RECORDED:
            present, up, known = self._recorded_tallies(customers, tiles)
        else:
            present, up = self._tallies([partial(src.tile, fn) for fn in ("count", "sum")], customers, tiles)

        # Judge each device-day: all present and up, all missing, or a day to look into.
        states: dict[Key, list[States]] = {}
        busy: dict[int, list[Key]] = {}
        for k, pres in present.items():
            ups = up.get(k, np.zeros(len(tiles), dtype=np.int64))
            parts = []
            for i, (lo, hi) in enumerate(tiles):
                n = (hi - lo) // 60
                if i in known.get(k, {}):
                    parts.append(known[k][i])
                elif pres[i] == n and ups[i] == n:
                    parts.append(np.full(n, UP, dtype=np.int8))
                elif pres[i] == 0:
                    parts.append(np.full(n, NO_DATA, dtype=np.int8))
                else:
                    parts.append(np.full(n, UP, dtype=np.int8))
                    busy.setdefault(i, []).append(k)
            states[k] = parts

        def detail(i: int) -> tuple[int, list[RangeSeries]]:
            lo, hi = tiles[i]
            keys = busy[i]
            names = sorted({k[0] for k in keys})
            devs = sorted({k[2] for k in keys})
            sel = customer_selector(names, f"device=~{quote('|'.join(re.escape(d) for d in devs))}")
            return i, self.prom.range(src.exceptions(sel), lo + 60, hi, 60)

        for i, rows in self._map(detail, sorted(busy)):
            lo, hi = tiles[i]
            events: dict[Key, list[tuple[int, str]]] = {}
            for r in rows:
                edge = r.label("edge")
                for t in r.times.tolist():
                    events.setdefault(_key(r.labels), []).append((int(t), edge))
            for k in busy[i]:
                arr = _apply(states[k][i], sorted(events.get(k, [])), lo)
                if (
                    int((arr != NO_DATA).sum()) != present[k][i]
                    or int((arr == UP).sum()) != up.get(k, present[k] * 0)[i]
                ):
                    arr = self._dense(src, k, lo, hi)  # double or odd samples: read it in full
                states[k][i] = arr
        return {k: np.concatenate(parts) for k, parts in states.items()}

    def _tallies(
        self,
        exprs: Sequence[Callable[[str, int], str]],
        customers: list[str],
        tiles: list[tuple[int, int]],
        which: dict[int, list[str]] | None = None,
    ) -> list[dict[Key, Tally]]:
        """For each expression, per series key, one number per tile: ``expr(selector,
        seconds)`` evaluated at each tile's end. Every tile for every customer (``which`` None:
        the whole days in one range query, the odd tile in an instant query), or only the
        customers ``which`` names for each tile (an instant query per tile). The requests of
        all the expressions share one pool, :attr:`workers` at a time."""
        index = {hi: i for i, (_, hi) in enumerate(tiles)}
        full = [t for t in tiles if t[1] - t[0] == DAY]
        parts: list[tuple[list[str], tuple[int, int] | None]] = []
        if which is None:
            for cs in _chunks(customers, READ_CUSTOMERS):
                if full:
                    parts.append((cs, None))
                parts.extend((cs, t) for t in tiles if t[1] - t[0] != DAY)
        else:
            parts.extend((cs, tiles[i]) for i, names in sorted(which.items()) for cs in _chunks(names))
        jobs = [(e, cs, t) for e in range(len(exprs)) for cs, t in parts]

        def run(job: tuple[int, list[str], tuple[int, int] | None]) -> list[tuple[Labels, int, float]]:
            e, cs, t = job
            expr = exprs[e]
            sel = customer_selector(cs)
            if t is None:
                rows = self.prom.range(expr(sel, DAY), full[0][1], full[-1][1], DAY)
                return [
                    (r.labels, int(ts), float(v))
                    for r in rows
                    for ts, v in zip(r.times, r.values, strict=True)
                ]
            return [(x.labels, t[1], x.value) for x in self.prom.instant(expr(sel, t[1] - t[0]), t[1])]

        out: list[dict[Key, Tally]] = [{} for _ in exprs]
        for (e, _, _), rows in zip(jobs, self._map(run, jobs), strict=True):
            for labels, hi, value in rows:
                out[e].setdefault(_key(labels), np.zeros(len(tiles), dtype=np.int64))[index[hi]] = int(value)
        return out

    def _recorded_tallies(
        self, customers: list[str], tiles: list[tuple[int, int]]
    ) -> tuple[dict[Key, Tally], dict[Key, Tally], dict[Key, dict[int, States]]]:
        """Minutes with data and minutes up per device and tile, and the minute arrays of the
        tiles already settled, reading every device's minutes only where it is needed.

        Each customer-tile is judged first on ``REPORTING`` (the devices with a sample, per
        minute) and the sparse ``UNREACHABLE``, which the same rule evaluations record beside
        the recorded series. *Aligned*: in every minute with a ``REPORTING`` sample, all N
        series of the customer had one (its sum is N times its count). Then:

        - aligned, a sample every minute, no down minute: every device up all tile;
        - aligned, a sample every minute: up but in its down minutes (the sparse series);
        - aligned with minutes missing: when each device's count of minutes equals the
          customer's (read once), each device has data exactly in the ``REPORTING`` minutes
          and is down in its ``UNREACHABLE`` ones;
        - anything else (a device with a gap of its own, series that come and go, rules
          loaded within the tile): counted and summed device by device, like raw samples.
        """
        m, n = self.month, [(hi - lo) // 60 for lo, hi in tiles]
        reporting_name, unreachable_name = self.companions
        series: dict[str, set[Labels]] = {}
        for cs in _chunks(customers):
            for labels in self.prom.series(f"{RECORDED}{{{customer_selector(cs)}}}", m.start, m.end):
                series.setdefault(dict(labels).get("customer", ""), set()).add(
                    tuple(kv for kv in labels if kv[0] != "__name__")
                )
        keys = {c: sorted({_key(ls) for ls in sets}) for c, sets in series.items()}

        def over(fn: str, name: str) -> Callable[[str, int], str]:
            return partial(Source(True, name).tile, fn)

        runs, reporting, down = self._tallies(
            [over("count", reporting_name), over("sum", reporting_name), over("count", unreachable_name)],
            customers,
            tiles,
        )
        zero = np.zeros(len(tiles), dtype=np.int64)
        present = {k: zero.copy() for ks in keys.values() for k in ks}
        up = {k: zero.copy() for ks in keys.values() for k in ks}
        minute_days: dict[int, list[str]] = {}  # tile -> customers whose minutes to read
        count_days: dict[int, list[str]] = {}  # tile -> customers whose devices to count
        for c in customers:
            ks = keys.get(c, [])
            ran, seen = runs.get((c, "", ""), zero), reporting.get((c, "", ""), zero)
            downs = sum((down.get(k, zero) for k in ks), zero)
            for i in range(len(tiles)):
                aligned = bool(ran[i] > 0 and seen[i] == len(series.get(c, ())) * ran[i])
                if aligned and ran[i] == n[i] and downs[i] == 0:
                    for k in ks:
                        present[k][i] = up[k][i] = n[i]
                    continue
                self.read_in_full.setdefault(c, []).append(tiles[i][0])
                if aligned:
                    minute_days.setdefault(i, []).append(c)
                if not aligned or ran[i] != n[i]:
                    count_days.setdefault(i, []).append(c)
        (counts,) = self._tallies([over("count", RECORDED)], customers, tiles, count_days)
        minutes = dict(self._map(lambda i: (i, self._minutes(tiles[i], minute_days[i])), sorted(minute_days)))
        # Per customer, its series keys and any key the counts found beyond them.
        counted = {c: set(keys.get(c, [])) for c in customers}
        for k in counts:
            counted.setdefault(k[0], set()).add(k)

        known: dict[Key, dict[int, States]] = {}
        sum_days: dict[int, list[str]] = {}  # tile -> customers to judge on counts and sums
        for i in range(len(tiles)):
            for c in count_days.get(i, []):
                if c not in minute_days.get(i, []):
                    sum_days.setdefault(i, []).append(c)
            for c in minute_days.get(i, []):
                ks = keys.get(c, [])
                if c in count_days.get(i, []) and (
                    counted[c] != set(ks) or any(counts.get(k, zero)[i] != runs[(c, "", "")][i] for k in ks)
                ):
                    sum_days.setdefault(i, []).append(c)  # not aligned device by device
                    continue
                base = np.full(n[i], NO_DATA, dtype=np.int8)
                base[minutes[i].get((c, "", ""), np.zeros(0, np.int64))] = UP
                for k in ks:
                    arr = base.copy()
                    arr[minutes[i].get(k, np.zeros(0, np.int64))] = DOWN
                    known.setdefault(k, {})[i] = arr
        (sums,) = self._tallies([over("sum", RECORDED)], customers, tiles, sum_days) if sum_days else ({},)
        for i, cs in sum_days.items():
            for c in cs:
                for k in counted[c]:
                    present.setdefault(k, zero.copy())[i] = counts.get(k, zero)[i]
                    up.setdefault(k, zero.copy())[i] = sums.get(k, zero)[i]
        return present, up, known

    def _minutes(self, tile: tuple[int, int], customers: list[str]) -> dict[Key, npt.NDArray[np.int64]]:
        """The tile's minutes (indexes) with a ``REPORTING`` sample, per customer, and with an
        ``UNREACHABLE`` one, per device: one range query, the sparse series nearly free."""
        lo, hi = tile
        sel = customer_selector(customers)
        expr = " or ".join(f"last_over_time({name}{{{sel}}}[59999ms])" for name in self.companions)
        out: dict[Key, npt.NDArray[np.int64]] = {}
        for r in self.prom.range(expr, lo + 60, hi, 60):
            idx = (r.times - lo) // 60 - 1
            out[_key(r.labels)] = idx[(idx >= 0) & (idx < (hi - lo) // 60)]
        return out

    def _dense(self, src: Source, k: Key, lo: int, hi: int) -> States:
        n = (hi - lo) // 60
        out = np.full(n, NO_DATA, dtype=np.int8)
        sel = f"customer={quote(k[0])},site={quote(k[1])},device={quote(k[2])}"
        for r in self.prom.range(src.minute(sel), lo + 60, hi, 60):
            idx = (r.times - lo) // 60 - 1
            ok = (idx >= 0) & (idx < n)
            out[idx[ok]] = np.where(r.values[ok] > 0, UP, DOWN).astype(np.int8)
        return out

    # --- alerts, Microsoft 365, backups, patching ---------------------------------------
    def _episodes(self, template: str, customer: str, step: int) -> list[Episode]:
        out = []
        m = self.month
        for r in self._range(template, m.start + step, m.end, step).get(customer, []):
            present = r.values > 0
            times = r.times[present]
            if not len(times):
                continue
            breaks = np.flatnonzero(np.diff(times) > step)
            starts = np.concatenate([[0], breaks + 1])
            ends = np.concatenate([breaks, [len(times) - 1]])
            labels = dict(r.labels)
            for a, b in zip(starts, ends, strict=True):
                out.append(Episode(labels, int(times[a]) - step, int(times[b])))
        return sorted(out, key=lambda e: (e.start, sorted(e.labels.items())))

    def firing_alerts(self, customer: str) -> list[Episode]:
        """Each firing episode of each alert of the customer (from ``ALERTS``)."""
        return self._episodes('last_over_time(ALERTS{alertstate="firing",$sel}[1m])', customer, 60)

    def m365_incidents(self, customer: str) -> list[Episode]:
        return self._episodes("last_over_time(m365_service_degraded{$sel}[5m]) == 1", customer, 300)

    def last_values(
        self, metric: str, customer: str, at: int, extra: str = "", window: str = "1h"
    ) -> pd.DataFrame:
        """The last value of every series of ``metric`` at ``at``: one row per series."""
        got = self._instant(f"last_over_time({metric}{{$sel}}[{window}])", at, extra)
        return pd.DataFrame([dict(s.labels) | {"value": s.value} for s in got.get(customer, [])])

    def over_month(self, fn: str, metric: str, customer: str, extra: str = "") -> pd.DataFrame:
        """``fn_over_time`` of a metric over the month, per series (aggregated on the server)."""
        secs = self.month.end - self.month.start
        got = self._instant(f"{fn}_over_time({metric}{{$sel}}[{secs}s])", self.month.end, extra)
        return pd.DataFrame([dict(s.labels) | {"value": s.value} for s in got.get(customer, [])])

    def daily(self, template: str, customer: str) -> list[tuple[int, float]]:
        """A per-customer aggregate (``$sel`` for the selector, ``by (customer)``) sampled at
        the end of each day (for trends)."""
        m = self.month
        out: list[tuple[int, float]] = []
        for r in self._range(template, m.start + DAY, m.end, DAY).get(customer, []):
            out.extend(zip(r.times.tolist(), r.values.tolist(), strict=True))
        return sorted(out)

    def backup_runs(self, customer: str) -> pd.DataFrame:
        """One row per backup run that started in the month: source, job, start, result."""
        m = self.month
        runs = self._range(
            "last_over_time(backup_job_last_run_timestamp_seconds{$sel}[5m])", m.start + 300, m.end, 300
        ).get(customer, [])
        ok = {
            (r.label("instance"), r.label("job_name")): r
            for r in self._range(
                'last_over_time(backup_job_last_result{$sel,result="success"}[5m])',
                m.start + 300,
                m.end,
                300,
            ).get(customer, [])
        }
        rows = []
        for r in runs:
            key = (r.label("instance"), r.label("job_name"))
            res = ok.get(key)
            starts, first = np.unique(r.values, return_index=True)
            for start, i in zip(starts, first, strict=True):
                if not m.start <= start < m.end:
                    continue
                success = res is not None and bool(res.values[np.searchsorted(res.times, r.times[i])] > 0)
                rows.append(
                    {
                        "source": key[0],
                        "job": key[1],
                        "start": int(start),
                        "result": "success" if success else "failed",
                    }
                )
        return pd.DataFrame(rows, columns=["source", "job", "start", "result"])


def _apply(base: States, events: list[tuple[int, str]], lo: int) -> States:
    """Mark a day's down minutes and gaps from its exception points (see Source.exceptions).

    >>> _apply(np.ones(6, dtype=np.int8), [(180, "gone"), (300, "back"), (360, "down")], 0).tolist()
    [1, 1, -1, -1, 1, 0]
    >>> _apply(np.ones(4, dtype=np.int8), [(180, "back")], 0).tolist()
    [-1, -1, 1, 1]
    """
    out = base.copy()
    edges = [(t, e) for t, e in events if e != "down"]
    missing = bool(edges) and edges[0][1] == "back"  # the day began inside a gap
    pos = 0
    for t, e in edges:
        j = (t - lo) // 60 - 1
        if missing:
            out[pos:j] = NO_DATA
        missing, pos = e == "gone", j
    if missing:
        out[pos:] = NO_DATA
    for t, e in events:
        if e == "down":
            out[(t - lo) // 60 - 1] = DOWN
    return out
