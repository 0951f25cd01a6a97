"""Seeded, bounded fuzzing of what users and networks send: requests and configs.

Malformed requests and headers go to the three exporters (real processes): no answer is a
5xx or shows a traceback, and no traceback reaches an exporter's log. Mutated configs go
through ``--config.check``: each either passes or fails with lines that name a file and a
field, never a traceback or pydantic's schema names.
"""

from __future__ import annotations

import logging
import random
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mspwatch.cli import main

from .conftest import Exporter, get, raw_request, write_configs

SEED = 20261201
REQUESTS_PER_EXPORTER = 80
MUTATIONS_PER_EXPORTER = 100

_ODD_BYTES = [b"\xff", b"\x00", b"\xc3\x28", b"\r", b"\x7f", "é".encode(), b"%", b"%ff", b"%00", b";", b","]
_ACCEPTS = [
    b"text/plain; version=x.y",
    b"application/openmetrics-text; version=abc",
    b"application/openmetrics-text; version=1.0.0; escaping=\xff",
    b"application/openmetrics-text; version=99.99.99",
    b"text/plain;;;version==1.0.0",
    b"*/*;q=abc",
    b",,,",
    b"text/plain; version=0.0.4",
]
TIMEOUT_HEADER = b"X-Prometheus-Scrape-Timeout-Seconds"
_TIMEOUTS = [b"nan", b"-1", b"0", b"1e309", b"abc", b"0.001", b"3", b"\xff", b""]


def _noise(rng: random.Random, n: int) -> bytes:
    return b"".join(
        rng.choice(_ODD_BYTES) if rng.random() < 0.3 else bytes([rng.randrange(32, 127)]) for _ in range(n)
    )


def _request(rng: random.Random, exp: Exporter) -> bytes:
    probe_path, _, probe_query = exp.probe.partition("?")
    path = rng.choice([b"/metrics", probe_path.encode(), b"/-/healthy", b"/", b"/-/reload", b"/nope"])
    queries = [
        probe_query.encode(),
        b"target=" + _noise(rng, rng.randrange(0, 40)),
        b"target=%5B%3A%3A1&auth=public_v2",
        b"target=" + b"x" * 300,
        b"name[]=" + _noise(rng, 10),
        _noise(rng, rng.randrange(0, 60)),
        b"",
    ]
    query = rng.choice(queries)
    method = rng.choice([b"GET", b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"G\xffT"])
    if path == b"/-/reload" and method in (b"POST", b"PUT"):
        method = b"GET"  # a reload is not what this test is about
    lines = [method + b" " + path + (b"?" + query if query else b"") + b" HTTP/1.1", b"Host: 127.0.0.1"]
    for _ in range(rng.randrange(0, 5)):
        name = rng.choice(
            [
                b"Accept",
                b"Accept-Encoding",
                b"X-Prometheus-Scrape-Timeout-Seconds",
                b"Authorization",
                b"X-" + _noise(rng, 5),
            ]
        )
        if name == b"Accept":
            value = rng.choice(_ACCEPTS) if rng.random() < 0.7 else _noise(rng, 20)
        elif name == TIMEOUT_HEADER:
            value = rng.choice(_TIMEOUTS)
        elif name == b"Authorization":
            value = rng.choice([b"Basic \xff", b"Basic !!!", b"Bearer x", _noise(rng, 15)])
        else:
            value = _noise(rng, rng.randrange(0, 30))
        lines.append(name + b": " + value)
    if rng.random() < 0.1:
        lines.append(b"Content-Length: " + rng.choice([b"-1", b"abc", b"99999999999999999999", b"0"]))
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


@pytest.mark.parametrize("name", ["snmp-exporter", "backup-exporter", "m365-exporter"])
def test_fuzzed_requests(exporters: dict[str, Exporter], name: str) -> None:
    exp = exporters[name]
    rng = random.Random(f"{SEED}-{name}")
    statuses: dict[int, int] = {}
    for i in range(REQUESTS_PER_EXPORTER):
        request = _request(rng, exp)
        try:
            resp = raw_request(exp.port, request)
        except (TimeoutError, ConnectionResetError) as exc:  # pragma: no cover - reported below
            pytest.fail(f"request {i} {request!r}: {exc!r}")
        except AssertionError:
            continue  # closed without an answer: h11 refusing a request line it cannot parse
        statuses[resp.status] = statuses.get(resp.status, 0) + 1
        assert resp.status < 500, (i, request, resp.status, resp.body[:300])
        assert b"Traceback" not in resp.body, (i, request)
    assert get(exp.port, "/-/healthy").status == 200
    assert exp.proc.poll() is None
    log = exp.log.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log, log[-3000:]
    assert statuses.get(200, 0) > 0 and statuses.get(400, 0) > 0, statuses  # the mix reached both


# -- configs ----------------------------------------------------------------------------------

_VALUES: list[Any] = [True, False, None, "", "30", "3", -1, 0, 1.5, 10**400, float("inf"), float("nan")]
_VALUES += ["\xff", [], {}, "1h30m", "x" * 300, [1, 2], {"env": 1}, {"file": "nope"}, "1.2.3.4/40"]
_SCHEMA_WORDS = re.compile(r"lax-or-strict|function-(plain|after|before|wrap)|tagged-union|\[.*\]\.")
_LINE = re.compile(r"^\S.*?: \S.*?: .+$|^\S.*?: line \d+: .+$|^\S.*?: (cannot read|UTF-16|nested)")


@pytest.fixture(autouse=True)
def _keep_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _mutate_tree(rng: random.Random, data: Any) -> Any:
    path = rng.choice(_paths(data)[1:] or [()])
    if not path:
        return rng.choice(_VALUES)
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    what = rng.random()
    if what < 0.6:
        parent[path[-1]] = rng.choice(_VALUES)
    elif what < 0.8 and isinstance(parent, dict):
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[f"{path[-1]}_typo"] = 1
    return data


def _mutate_text(rng: random.Random, text: str) -> bytes:
    raw = text.encode()
    what = rng.random()
    if what < 0.3:
        return raw[: rng.randrange(len(raw))]
    if what < 0.6:
        at = rng.randrange(len(raw))
        return raw[:at] + rng.choice([*_ODD_BYTES, b"\t", b": ", b"- ", b"&a ", b"*a", b"{", b"]"]) + raw[at:]
    lines = text.splitlines(keepends=True)
    i = rng.randrange(len(lines))
    return "".join([*lines[: i + 1], lines[i], *lines[i + 1 :]]).encode()  # a duplicate key, often


@pytest.mark.parametrize("name", ["snmp-exporter", "backup-exporter", "m365-exporter"])
def test_fuzzed_configs(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(f"{SEED}-{name}")
    configs = write_configs(tmp_path / "valid")
    valid, _ = configs[name]
    # backup: the inventory is where most of the schema is; mutate it as often as the config.
    targets = [valid] + ([valid.parent / "inventory.yml"] if name == "backup-exporter" else [])
    outcomes = {0: 0, 1: 0}
    for i in range(MUTATIONS_PER_EXPORTER):
        work = tmp_path / f"run{i}"
        shutil.copytree(valid.parent, work)
        target = work / rng.choice(targets).name
        text = target.read_text(encoding="utf-8")
        if rng.random() < 0.6:
            data = _mutate_tree(rng, yaml.safe_load(text))
            target.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        else:
            target.write_bytes(_mutate_text(rng, text))
        code = main([name, "--config.check", f"--config.file={work / valid.name}"])
        out, err = capsys.readouterr()
        outcomes[code] += 1
        if code == 0:
            assert out.endswith(": OK\n") and not err, (i, out, err)
            continue
        lines = err.removeprefix("error: ").rstrip("\n").split("\n")
        for line in lines:
            assert str(work) in line, (i, line)  # names the file
            assert _LINE.match(line), (i, line)  # and the field or line
            assert not _SCHEMA_WORDS.search(line), (i, line)
        shutil.rmtree(work)
    assert outcomes[0] > 0 and outcomes[1] > 0, outcomes
