"""The demo history generator: seeded, byte-identical, and in promtool's format."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from mspwatch.simulators.history.demo import estate_history, load_estate
from mspwatch.simulators.history.write import write_openmetrics
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
