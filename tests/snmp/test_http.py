"""The SNMP exporter as users run it: a process behind TLS and basic auth, reloaded live."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import bcrypt
import httpx
import pytest
import yaml

from mspwatch.common.procs import free_port, wait_for_port
from mspwatch.simulators.tls import make_test_ca

from .conftest import V3_AUTH_KEY, V3_PRIV_KEY, Agent
from .helpers import value, write_config

WRONG_V3_PASSWORD = "wrong-v3-password-3e8d0f"
WRONG_COMMUNITY = "wrong-community-9c41b7"
SECRETS = [V3_AUTH_KEY, V3_PRIV_KEY, WRONG_V3_PASSWORD, WRONG_COMMUNITY, "noc-password-51f2"]


def _config(path: Path) -> Path:
    v3 = {
        "version": 3,
        "username": "mspwatch",
        "security_level": "authPriv",
        "auth_protocol": "SHA256",
        "auth_password": {"env": "TEST_V3_AUTH"},
        "priv_protocol": "AES256",
        "priv_password": {"file": "priv.txt"},
        "context_name": "server-linux",
    }
    (path.parent / "priv.txt").write_text(V3_PRIV_KEY + "\n")
    extra = {
        "auths": {
            **yaml.safe_load(write_config(path).read_text())["auths"],
            "v3": v3,
            "v3-wrong": {**v3, "auth_password": WRONG_V3_PASSWORD},
            "wrong-community": {"version": 2, "community": WRONG_COMMUNITY},
        }
    }
    return write_config(path, extra)


@pytest.fixture
def exporter(
    tmp_path: Path, start_process: Callable[..., subprocess.Popen[bytes]]
) -> tuple[str, Path, subprocess.Popen[bytes], Path]:
    ca = make_test_ca(tmp_path / "tls")
    hashed = bcrypt.hashpw(b"noc-password-51f2", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(
        yaml.safe_dump(
            {
                "tls_server_config": {"cert_file": str(ca.cert_file), "key_file": str(ca.key_file)},
                "basic_auth_users": {"noc": hashed},
            }
        )
    )
    cfg = _config(tmp_path / "snmp.yml")
    port = free_port()
    proc = start_process(
        [
            sys.executable,
            "-m",
            "mspwatch.cli",
            "snmp-exporter",
            f"--config.file={cfg}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--web.config.file={web}",
            "--log.level=debug",
        ],
        "exporter",
        env={"TEST_V3_AUTH": V3_AUTH_KEY, "PYTHONPATH": str(Path.cwd())},
    )
    wait_for_port(port, proc=proc)
    return f"https://127.0.0.1:{port}", ca.ca_file, proc, cfg


def test_tls_basic_auth_probe_reload_and_no_secret_leaks(
    exporter: tuple[str, Path, subprocess.Popen[bytes], Path], snmpsim: Agent, tmp_path: Path
) -> None:
    url, ca, proc, cfg = exporter
    seen: list[str] = []
    with httpx.Client(verify=str(ca), timeout=30) as anon:
        assert anon.get(f"{url}/-/healthy").status_code == 401
        bad = anon.get(f"{url}/metrics", auth=("noc", "guess"))
        assert bad.status_code == 401
        assert bad.headers["www-authenticate"] == 'Basic realm="mspwatch"'
    with httpx.Client(verify=str(ca), timeout=30, auth=("noc", "noc-password-51f2")) as http:
        assert http.get(f"{url}/-/healthy").text == "Healthy\n"

        def probe(auth: str, timeout: str = "10") -> httpx.Response:
            r = http.get(
                f"{url}/snmp",
                params={"target": f"127.0.0.1:{snmpsim.port}", "auth": auth},
                headers={"X-Prometheus-Scrape-Timeout-Seconds": timeout},
            )
            seen.append(r.text)
            return r

        ok = probe("v3")
        assert ok.status_code == 200
        assert value(ok.text, "snmp_up") == 1
        assert ok.headers["content-type"].startswith("text/plain; version=0.0.4")
        for failing, why in (("v3-wrong", "auth"), ("wrong-community", "timeout")):
            # 2 s request timeout, no retries: the answer comes inside the 3 s scrape timeout.
            started = time.monotonic()
            r = probe(failing, timeout="3")
            assert time.monotonic() - started < 3
            assert r.status_code == 200
            assert value(r.text, "snmp_up") == 0
            assert value(r.text, f'snmp_scrape_error{{reason="{why}"}}') == 1

        missing = http.get(f"{url}/snmp")
        assert (missing.status_code, missing.text) == (400, "'target' parameter must be specified\n")
        gz = http.get(f"{url}/metrics", headers={"Accept-Encoding": "gzip"})
        assert gz.headers["content-encoding"] == "gzip"
        own = gz.text
        assert value(own, "snmp_exporter_config_last_reload_successful") == 1
        assert value(own, 'snmp_exporter_probes_total{outcome="ok"}') == 3
        assert value(own, 'snmp_exporter_probes_total{outcome="bad_request"}') == 1
        assert value(own, "snmp_exporter_unauthorized_requests_total") == 2
        seen.append(own)

        assert http.get(f"{url}/-/reload").status_code == 405
        good_config = cfg.read_text()
        cfg.write_text(good_config + "\nunknown_key: 1\n")
        r = http.post(f"{url}/-/reload")
        assert r.status_code == 500
        seen.append(r.text)
        assert value(http.get(f"{url}/metrics").text, "snmp_exporter_config_last_reload_successful") == 0
        assert value(probe("v3").text, "snmp_up") == 1  # the old config keeps serving

        cfg.write_text(good_config)
        os.kill(proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if value(http.get(f"{url}/metrics").text, "snmp_exporter_config_last_reload_successful") == 1:
                break
            time.sleep(0.1)
        assert value(http.get(f"{url}/metrics").text, "snmp_exporter_config_last_reload_successful") == 1

    proc.terminate()
    proc.wait(timeout=10)
    log = (tmp_path / "exporter.log").read_text()
    assert "config reload failed" in log and "unknown_key: unknown field" in log
    for text in [*seen, log]:
        for secret in SECRETS:
            assert secret not in text
