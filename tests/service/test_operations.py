"""What an operations team deploys: the health probe, the systemd units, the container image."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from authd import config as configmod
from authd import healthcheck
from authd.config_reference import SAMPLES

ROOT = Path(__file__).resolve().parents[2]
UNITS = {role: ROOT / "deploy" / f"authd-{role}.service" for role in ("branch", "center")}
HARDENING = ("NoNewPrivileges=yes", "PrivateTmp=yes", "ProtectSystem=strict", "ProtectHome=yes",
             "RestrictSUIDSGID=yes", "CapabilityBoundingSet=", "User=authd", "UMask=0077")


def test_health_probe_answers_for_a_serving_node(server: Any) -> None:
    srv = server()
    assert healthcheck.probe(srv.address, insecure=True) == (True, "SERVING")
    ok, seen = healthcheck.probe(srv.address, insecure=True,
                                 service="authd.v1.OtpService")
    assert ok and seen == "SERVING"
    ok, seen = healthcheck.probe(srv.address, insecure=True, service="no.such.Service")
    assert not ok and seen.startswith("NOT_FOUND")
    assert healthcheck.main(srv.address, service="", insecure=True, ca="", cert="", key="",
                            timeout=5) == 0


def test_health_probe_fails_when_nothing_listens() -> None:
    from tests.pgcluster import free_port

    ok, seen = healthcheck.probe(f"127.0.0.1:{free_port()}", insecure=True, timeout=1)
    assert not ok and seen.startswith(("UNAVAILABLE", "DEADLINE_EXCEEDED"))
    ok, seen = healthcheck.probe("127.0.0.1:1", insecure=False)
    assert not ok and "--ca, --cert and --key" in seen


def _directives(unit: Path) -> list[str]:
    return [line.strip() for line in unit.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith(("#", "["))]


@pytest.mark.parametrize("role", sorted(UNITS))
def test_systemd_unit_is_hardened_and_matches_its_sample(role: str) -> None:
    lines = _directives(UNITS[role])
    for wanted in HARDENING:
        assert wanted in lines, f"{UNITS[role].name} lacks {wanted}"
    assert "ExecStart=/usr/local/bin/authd serve --config /etc/authd/authd.toml" in lines
    credential = next(line for line in lines if line.startswith("LoadCredentialEncrypted="))
    name = credential.split("=", 1)[1].split(":", 1)[0]
    sample = configmod.load(SAMPLES[role], environ={})
    assert sample.kek.pin_file == f"/run/credentials/authd-{role}.service/{name}"
    if shutil.which("systemd-analyze"):
        proc = subprocess.run(["systemd-analyze", "verify", str(UNITS[role])],
                              capture_output=True, text=True, check=False)
        assert "Unknown key" not in proc.stderr and "Unknown lvalue" not in proc.stderr


def _docker_works() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(not _docker_works(), reason="no container runtime (docker info fails): "
                                                "the image is built and started where one is")
def test_container_image_builds_and_serves(tmp_path: Path) -> None:
    tag = f"authd-center-test:{int(time.time())}"
    subprocess.run(["docker", "build", "-t", tag, str(ROOT)], check=True, timeout=900)
    try:
        user = subprocess.run(["docker", "run", "--rm", "--entrypoint", "id", tag, "-u"],
                              capture_output=True, text=True, check=True).stdout.strip()
        assert user != "0"
        (tmp_path / "authd.toml").write_text(
            'roles = ["center"]\nsimulators = false\n[kek]\nkind = "file"\n'
            '[server]\nlisten = "127.0.0.1:50051"\ninsecure = true\n')
        name = tag.replace(":", "-")
        subprocess.run(["docker", "run", "-d", "--name", name, "--network", "host",
                        "-v", f"{tmp_path}:/etc/authd:ro", tag], check=True)
        deadline = time.monotonic() + 60
        ok = False
        while time.monotonic() < deadline and not ok:
            ok, _ = healthcheck.probe("127.0.0.1:50051", insecure=True, timeout=2)
            time.sleep(1)
        assert ok
    finally:
        subprocess.run(["docker", "rm", "-f", tag.replace(":", "-")], capture_output=True,
                       check=False)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)
