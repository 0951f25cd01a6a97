"""The demo history generator: seeded, byte-identical, and in promtool's format."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from mspwatch.simulators.history.demo import estate_history, load_estate
from mspwatch.simulators.history.write import rule_levels, write_openmetrics
from tests.reports.groundtruth import utc

END = utc("2026-11-20T12:00")


def _write(tmp: Path, seed: int) -> list[Path]:
    return write_openmetrics(estate_history(load_estate(), END, days=8, seed=seed), tmp)


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a = _write(tmp_path / "a", 1)
    b = _write(tmp_path / "b", 1)
    c = _write(tmp_path / "c", 2)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert [p.read_bytes() for p in a] != [p.read_bytes() for p in c]


def test_openmetrics_for_promtool(tmp_path: Path) -> None:
    files = _write(tmp_path, 1)
    assert [f.name for f in files][:2] == ["2026-11-12.om", "2026-11-13.om"]
    text = files[1].read_text()
    assert text.endswith("\n# EOF\n")
    first = text.splitlines()[0]
    _, _, ts = first.rsplit(" ", 2)
    assert int(ts) % 60 == 30  # seconds (not ms), half-way through the minute
    assert utc("2026-11-13T00:00") <= int(ts) < utc("2026-11-14T00:00")


def test_history_holds_the_documented_events() -> None:
    h = estate_history(load_estate(), END, days=35, seed=1)
    lengths = sorted({(o.end - o.start) // 60 for o in h.outages})
    assert lengths[0] <= 2  # blips
    assert max(lengths) >= 60  # real outages
    assert [(g.customer, (g.end - g.start) // 60) for g in h.gaps] == [(None, 47)]
    # The flapping interface, and the live scenarios' problems running to the history's end.
    assert {a.alertname for a in h.alerts} == {
        "InterfaceErrorsHigh",
        "BackupJobFailed",
        "M365ServiceDegraded",
        "PatchCriticalUpdateOverdue",
    }
    assert {a.alertname for a in h.alerts if a.end == h.end} == {
        "BackupJobFailed",
        "M365ServiceDegraded",
        "PatchCriticalUpdateOverdue",
    }
    # Everything drawn at random is over before the last day (none is still running live).
    assert max(o.end for o in h.outages) < h.end - 86400 + 3600
    assert max(a.end for a in h.alerts if a.alertname == "InterfaceErrorsHigh") < h.end - 86400 + 3600
    assert any(j.failed_days for j in h.backup_jobs)
    assert any(t.incidents for t in h.tenants)
    assert any(p.silent_from_day is not None for p in h.patch_devices)
    # A gateway reboots at 02:30 UTC on a Sunday, inside the estate's Sunday window.
    sunday = [
        o for o in h.outages if dt.datetime.fromtimestamp(o.start, dt.UTC).strftime("%a %H:%M") == "Sun 02:30"
    ]
    assert {o.customer for o in sunday} == {"acme-dental", "bolt-logistics"}


def test_history_carries_the_inventory_exporters_series() -> None:
    """The SLO rules' inputs: contract hours and maintenance from the estate's inventory,
    DST-correct, written every minute through monitoring gaps; the devices every 5 minutes."""
    from mspwatch.simulators.history.series import history_series

    h = estate_history(load_estate(), END, days=8, seed=1)
    states = {s.customer: s for s in h.inventory}
    assert states["bolt-logistics"].contract_spans is None  # 24x7
    acme_hours = states["acme-dental"].contract_spans
    assert acme_hours is not None and acme_hours[0] == (utc("2026-11-12T12:00"), utc("2026-11-12T18:00"))
    assert states["acme-dental"].maintenance == ((
        "hq", utc("2026-11-15T02:00"), utc("2026-11-15T04:00")),)  # fmt: skip
    assert states["bolt-logistics"].maintenance == (
        ("depot", utc("2026-11-14T22:00"), utc("2026-11-15T04:00")),
        ("datacentre", utc("2026-11-14T22:00"), utc("2026-11-15T01:00")),
    )
    series = history_series(h)
    by_key = {(s.name, dict(s.labels).get("customer"), dict(s.labels).get("site")): s for s in series}
    hours = by_key[("inventory_contract_measuring", "acme-dental", None)]
    at = dict(zip(hours.times.tolist(), hours.values.tolist(), strict=True))
    assert at[utc("2026-11-16T07:59") + 30] == 0.0 and at[utc("2026-11-16T08:00") + 30] == 1.0
    # The demo's 47-minute gap (Prometheus down) leaves the inventory's series whole.
    assert len(hours.times) == 8 * 1440
    window = by_key[("inventory_maintenance_active", "acme-dental", "hq")]
    assert window.values.sum() == 120
    devices = [s for s in series if s.name == "inventory_device_info"]
    assert len(devices) == len(h.devices) and all(len(s.times) == 8 * 288 for s in devices)


def test_rule_levels_take_a_name_recorded_by_several_rules() -> None:
    """slo-targets.yml records customer:slo_target:ratio once per customer: one name, one
    level holding both rules, and every rule comes after each recorded name it reads."""
    root = Path(__file__).resolve().parents[2] / "alertrules"
    files = [root / name for name in ("availability.yml", "slo-targets.yml", "slo.yml", "recording.yml")]
    levels = rule_levels(files)
    placed = [(n, r) for n, doc in enumerate(levels) for g in doc["groups"] for r in g["rules"]]
    level: dict[str, set[int]] = {}
    for n, r in placed:
        level.setdefault(r["record"], set()).add(n)
    assert all(len(ns) == 1 for ns in level.values()), level
    assert [n for n, r in placed if r["record"] == "customer:slo_target:ratio"] == [0, 0]
    reads = [(n, name) for n, r in placed for name in level if name != r["record"] and name in r["expr"]]
    assert reads  # the availability rules read each other
    assert all(n > min(level[name]) for n, name in reads)
