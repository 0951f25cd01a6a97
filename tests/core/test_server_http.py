"""The shared HTTP core of every exporter: format negotiation, bad headers, idle connections.

Each test runs against the three exporters as real processes (``conftest.exporters``).
"""

from __future__ import annotations

import gzip

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import Exporter, get, probe_outcomes

EXPORTERS = ["snmp-exporter", "backup-exporter", "m365-exporter"]
TEXT_0_0_4 = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"

# Headers that made client_python's negotiation raise (TypeError, UnicodeDecodeError): each
# must get the default text format.
BAD_HEADERS = {
    "text-version-x.y": b"Accept: text/plain; version=x.y",
    "openmetrics-version-abc": b"Accept: application/openmetrics-text; version=abc",
    "openmetrics-version-1.x": b"Accept: application/openmetrics-text; version=1.x",
    "accept-ff-byte": b"Accept: \xff",
    "accept-ff-in-version": b"Accept: text/plain; version=1.\xff",
    "accept-encoding-ff-byte": b"Accept-Encoding: \xff",
}


def _paths(exp: Exporter) -> list[str]:
    return ["/metrics", exp.probe]


@pytest.mark.parametrize("header", list(BAD_HEADERS.values()), ids=list(BAD_HEADERS))
@pytest.mark.parametrize("name", EXPORTERS)
def test_bad_negotiation_header_gets_default_format(
    exporters: dict[str, Exporter], name: str, header: bytes
) -> None:
    exp = exporters[name]
    for path in _paths(exp):
        before = probe_outcomes(exp)
        resp = get(exp.port, path, [header])
        assert resp.status == 200, (path, resp.body[:300])
        assert resp.headers["content-type"] == TEXT_0_0_4
        families = {f.name for f in text_string_to_metric_families(resp.body.decode())}
        # The whole answer, in the default format: the exporter's own metrics or the target's
        # up (snmp_up, backup_source_up, m365_up).
        if path == "/metrics":
            assert f"{exp.namespace}_exporter_build_info" in families
        else:
            assert families & {"snmp_up", "backup_source_up", "backup_up", "m365_up"}, sorted(families)
        after = probe_outcomes(exp)
        # The probe counter tells the truth: one ok per probe answered 200, nothing for /metrics.
        expected_ok = before["ok"] + (1 if path != "/metrics" else 0)
        assert (after["ok"], after["error"]) == (expected_ok, before["error"]), path


@pytest.mark.parametrize("name", EXPORTERS)
def test_good_negotiation_still_works(exporters: dict[str, Exporter], name: str) -> None:
    exp = exporters[name]
    for path in _paths(exp):
        om = get(exp.port, path, [b"Accept: application/openmetrics-text; version=1.0.0"])
        assert (om.status, om.headers["content-type"]) == (200, OPENMETRICS)
        assert om.body.endswith(b"# EOF\n")
        # A range with a bad version is skipped; the next acceptable one wins.
        mixed = get(
            exp.port, path, [b"Accept: text/plain; version=x.y, application/openmetrics-text; version=1.0.0"]
        )
        assert (mixed.status, mixed.headers["content-type"]) == (200, OPENMETRICS)
        gz = get(exp.port, path, [b"Accept-Encoding: gzip"])
        assert (gz.status, gz.headers["content-encoding"]) == (200, "gzip")
        assert gzip.decompress(gz.body).startswith(b"# HELP ")


@pytest.mark.parametrize("name", EXPORTERS)
def test_name_filter(exporters: dict[str, Exporter], name: str) -> None:
    exp = exporters[name]
    resp = get(exp.port, f"/metrics?name[]={exp.namespace}_exporter_build_info")
    names = [f.name for f in text_string_to_metric_families(resp.body.decode())]
    assert names == [f"{exp.namespace}_exporter_build_info"]
