"""Credentials never appear in logs, /metrics or errors; TLS verification with a custom CA.

These run the real ``mspwatch backup-exporter`` process against the simulator.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx

from mspwatch.common.procs import free_port, wait_for_port
from mspwatch.simulators.tls import make_test_ca

from .conftest import PASSWORD, SCENARIOS, Sim, value, veeam_source, write_config
from .test_faults import reason_of

WRONG = "Wr0ng-but-Secret-5f2a"
RESTIC_PW = "restic-repo-Secret-91c4"


def test_credentials_never_leak(acme: Sim, tmp_path: Path, start_process: Any) -> None:
    fail_cmd = [
        sys.executable,
        "-c",
        "import os, sys; sys.stderr.write('Fatal: wrong password ' + os.environ['RESTIC_PASSWORD'])"
        "; sys.exit(1)",
    ]
    config = write_config(
        tmp_path,
        [
            veeam_source(acme.url),
            {**veeam_source(acme.url), "name": "acme-wrong", "credentials": "wrong"},
            {
                "name": "acme-restic",
                "kind": "restic",
                "command": fail_cmd,
                "credentials": "restic",
            },
        ],
        password={"env": "ACME_VEEAM_PASSWORD"},
        extra_credentials={
            "wrong": {"username": "svc-monitor", "password": {"env": "WRONG_PASSWORD"}},
            "restic": {"password": {"file": str(tmp_path / "restic.pw")}},
        },
    )
    (tmp_path / "restic.pw").write_text(RESTIC_PW + "\n")
    port = free_port()
    env = {"ACME_VEEAM_PASSWORD": PASSWORD, "WRONG_PASSWORD": WRONG}
    proc = start_process(
        [
            sys.executable,
            "-m",
            "mspwatch.cli",
            "backup-exporter",
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=debug",
        ],
        "exporter",
        env,
    )
    wait_for_port(port, proc=proc)
    seen = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, trust_env=False) as c:
        good = c.get("/backup", params={"target": "acme-vbr"})
        assert value(good.text, "backup_up") == 1
        bad = c.get("/backup", params={"target": "acme-wrong"})
        assert reason_of(bad.text) == "auth"
        restic = c.get("/backup", params={"target": "acme-restic"})
        assert reason_of(restic.text) == "command_failed"
        seen += [good.text, bad.text, restic.text, c.get("/metrics").text, c.get("/").text]
        assert c.post("/-/reload").status_code == 200
    proc.terminate()
    proc.wait(timeout=10)
    log = (tmp_path / "exporter.log").read_text()
    assert "source down" in log and "acme-wrong" in log  # the failures were logged...
    assert "Fatal: wrong password <secret>" in log  # ...with the secret redacted
    for text in [*seen, log]:
        for secret in (PASSWORD, WRONG, RESTIC_PW):
            assert secret not in text


def _cert(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 signed by it."""
    tls = make_test_ca(tmp_path / "tls", hosts=("127.0.0.1",))
    return tls.ca_file, tls.cert_file, tls.key_file


async def test_tls_verification_with_custom_ca(tmp_path: Path, start_process: Any, exporters: Any) -> None:
    ca_file, cert_file, key_file = _cert(tmp_path)
    port = free_port()
    proc = start_process(
        [
            sys.executable,
            "-m",
            "mspwatch.simulators.veeam",
            f"--listen=127.0.0.1:{port}",
            f"--scenario={SCENARIOS / 'smallbiz.yaml'}",
            f"--tls-cert={cert_file}",
            f"--tls-key={key_file}",
        ],
        "tls-sim",
    )
    wait_for_port(port, proc=proc)
    url = f"https://127.0.0.1:{port}"
    cases = {
        "default-trust": ({}, "tls"),
        "custom-ca": ({"ca_file": str(ca_file)}, None),
        "insecure": ({"insecure_skip_verify": True}, None),
    }
    for name, (extra, reason) in cases.items():
        config = write_config(tmp_path / name, [veeam_source(url, **extra)])
        text = await exporters(config).scrape("acme-vbr")
        assert reason_of(text) == reason, name
        assert value(text, "backup_up") == (0 if reason else 1), name
