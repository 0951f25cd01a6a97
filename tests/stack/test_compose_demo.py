"""The compose ``demo`` profile's site (compose/demo/, ``python -m mspwatch.demo.compose_site``):
committed as the generator writes it, mounted by compose.yaml in place of the operator's
files, every address it names served by a container of the profile, and every config loading
with the exporters' own loaders and passing ``mspwatch targets``' cross-check.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from mspwatch.demo import compose_site
from mspwatch.exporters.backup.config import load_config as load_backup
from mspwatch.exporters.m365.config import load_config as load_m365
from mspwatch.exporters.patch.config import load_config as load_patch
from mspwatch.exporters.snmp.config import load_config as load_snmp
from mspwatch.inventory import load_inventory
from mspwatch.targets import generate as targets_generate
from tests.conftest import ROOT, assert_golden
from tests.stack.test_compose import PASSWORD, compose_binary

DEMO = ROOT / "compose" / "demo"


def test_the_committed_demo_site_is_what_the_generator_writes(tmp_path: Path, update_goldens: bool) -> None:
    files = compose_site.generate(tmp_path)
    committed = {str(p.relative_to(DEMO)) for p in DEMO.rglob("*") if p.is_file() and p.name != "demo.env"}
    assert committed == set(files), "run: python -m mspwatch.demo.compose_site --out=compose/demo"
    for rel, text in files.items():
        assert_golden(DEMO / rel, text, update_goldens)


def resolve(profiles: str | None = None) -> dict[str, Any]:
    """compose.yaml's services as `docker compose --env-file .env --env-file demo/demo.env`
    sees them (``profiles``: COMPOSE_PROFILES from the environment instead of demo.env's)."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith(("GF_", "MSPWATCH_", "PROMETHEUS_"))}
    env.pop("COMPOSE_PROFILES", None)
    env["GF_ADMIN_PASSWORD"] = PASSWORD
    if profiles is not None:
        env["COMPOSE_PROFILES"] = profiles
    args = [str(compose_binary()), "--env-file", ".env.example", "--env-file", "demo/demo.env"]
    proc = subprocess.run(
        [*args, "config", "--format", "json"],
        cwd=ROOT / "compose",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout)["services"])


@pytest.fixture(scope="module")
def demo_services() -> dict[str, Any]:
    return resolve()


def test_the_demo_env_mounts_the_demo_site_for_the_exporters_and_prometheus(
    demo_services: dict[str, Any],
) -> None:
    for name in ("snmp-exporter", "backup-exporter", "m365-exporter", "patch-exporter", "inventory-exporter"):
        mounts = {v["target"]: (v["source"], v.get("read_only")) for v in demo_services[name]["volumes"]}
        assert mounts["/etc/mspwatch"] == (str(DEMO / "site"), True), name
        assert mounts["/run/secrets/mspwatch"] == (str(DEMO / "secrets" / "exporters"), True), name
    mounts = {v["target"]: v["source"] for v in demo_services["prometheus"]["volumes"]}
    assert mounts["/etc/prometheus/targets"] == str(DEMO / "targets")
    # COMPOSE_PROFILES=demo in demo.env: the simulators come up with the stack.
    assert {"snmpsim", "veeam-acme-vbr", "veeam-bolt-vbr", "ninjaone-simulator"} <= set(demo_services)


def test_every_address_of_the_demo_site_is_a_container_of_the_profile(demo_services: dict[str, Any]) -> None:
    inv = load_inventory(DEMO / "site" / "inventory.yml")
    aliases = demo_services["snmpsim"]["networks"]["default"]["aliases"]
    hosts = [d.address.rsplit(":", 1)[0] for c in inv.customers for s in c.sites for d in s.devices]
    assert sorted(aliases) == sorted(hosts) == sorted(compose_site.device_hosts())
    assert len(hosts) == 15
    entry = demo_services["snmpsim"]["entrypoint"]
    assert "--agent-udpv4-endpoint=0.0.0.0:1161" in entry
    urls = [s.url for c in inv.customers for s in [*c.backup_sources, *c.patch_sources] if hasattr(s, "url")]
    assert len(urls) == 4
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        svc = demo_services[parts.hostname or ""]
        assert f"--listen=0.0.0.0:{parts.port}" in svc["command"], url
    # Every scenario a simulator container is given is in the image (the repository's simulators/).
    for name, svc in demo_services.items():
        for arg in svc.get("command") or []:
            if arg.startswith("--scenario=/opt/mspwatch/"):
                assert (ROOT / arg.removeprefix("--scenario=/opt/mspwatch/")).is_file(), name
    # The v3 keys snmpsim is given are the ones the exporter reads.
    secrets = DEMO / "secrets" / "exporters"
    assert f"--v3-auth-key={(secrets / 'snmp-v3-auth').read_text()}" in entry
    assert f"--v3-priv-key={(secrets / 'snmp-v3-priv').read_text()}" in entry


def test_the_demo_configs_load_and_pass_the_targets_cross_check(tmp_path: Path) -> None:
    """As the containers see them: secrets at /run/secrets/mspwatch, here moved to a copy."""
    site = tmp_path / "site"
    shutil.copytree(DEMO / "site", site)
    secrets = DEMO / "secrets" / "exporters"
    for path in site.glob("*.yml"):
        path.write_text(path.read_text().replace(compose_site.SECRETS, str(secrets)))
    snmp = load_snmp(site / "snmp.yml")
    assert snmp.auths["acme-core-v3"].auth_password.reveal() == (secrets / "snmp-v3-auth").read_text()
    load_backup(site / "backup.yml")
    load_m365(site / "m365.yml")
    load_patch(site / "patch.yml")
    args = argparse.Namespace(
        inventory=site / "inventory.yml",
        output_dir=tmp_path / "targets",
        alertmanager_base=None,
        alertmanager_output=None,
        snmp_config=site / "snmp.yml",
        backup_config=site / "backup.yml",
        m365_config=site / "m365.yml",
        patch_config=site / "patch.yml",
    )
    files = targets_generate(args)
    # What `docker compose run --rm targets` would write is what is committed.
    assert {p.name: t for p, t in files.items()} == {
        p.name: p.read_text() for p in (DEMO / "targets").glob("*.json")
    }


def test_every_file_a_container_is_told_to_read_is_there_with_the_demo_site() -> None:
    """With demo.env every operator file is the committed demo's, so every path a command line
    names below a bind mount must exist (a glob must match): configs, rules, scenarios."""
    checked = []
    for name, svc in resolve("demo,scale,tools").items():
        binds = {v["target"]: Path(v["source"]) for v in svc.get("volumes", []) if v["type"] == "bind"}
        args = [*(svc.get("entrypoint") or []), *(svc.get("command") or [])]
        for arg in args:
            if arg.startswith("--out"):
                continue  # what a tool writes (--out, --output.dir), not what it reads
            value = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
            for target, source in binds.items():
                if value == target:
                    assert source.is_file(), f"{name}: {arg}"
                    checked.append(f"{name}: {arg}")
                elif value.startswith(target + "/"):
                    rel = value.removeprefix(target + "/")
                    found = list(source.glob(rel)) if "*" in rel else [source / rel]
                    assert found and all(p.exists() for p in found), f"{name}: {arg}"
                    checked.append(f"{name}: {arg}")
    # Prometheus' and the shard's configs, the exporters' configs, vmalert's rules, at least.
    assert any("prometheus: --config.file" in c for c in checked)
    assert any("prometheus-shard-1: --config.file" in c for c in checked)
    assert any("vmalert: -rule=" in c for c in checked)
    assert sum("--config.file=/etc/mspwatch/" in c for c in checked) == 4, checked
    assert "inventory-exporter: --inventory.file=/etc/mspwatch/inventory.yml" in checked
