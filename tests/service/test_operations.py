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
    from tests.pgcluster import closed_port

    with closed_port() as port:
        ok, seen = healthcheck.probe(f"127.0.0.1:{port}", insecure=True, timeout=1)
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


def _dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (INSTRUCTION, arguments), continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending += line.removesuffix("\\").strip() + " "
        if not line.endswith("\\"):
            keyword, _, rest = pending.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
            pending = ""
    return instructions


def test_container_image_recipe_installs_and_serves(tmp_path: Path) -> None:
    """The image's recipe without a container runtime: only what the Dockerfile COPYs is
    installed (a package the image leaves out fails here, as it would in the image), started
    with the image's ENV and ENTRYPOINT (no path of this checkout importable), and it serves;
    the image runs as its unprivileged user."""
    import json
    import os
    import sys

    from authd.demo_steps.topology import listening_port

    steps = _dockerfile()
    users = [args for keyword, args in steps if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), users
    context = tmp_path / "context"
    for keyword, args in steps:
        if keyword == "COPY":
            *sources, dest = args.split()
            target = context / dest.removeprefix("./")
            for source in sources:
                origin = ROOT / source
                if origin.is_dir():
                    shutil.copytree(origin, target, ignore=shutil.ignore_patterns(
                        "__pycache__"))
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, target / origin.name)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--no-compile", "--target", str(site),
                    str(context)], check=True, timeout=300, capture_output=True)
    env_line = next(args for keyword, args in steps if keyword == "ENV")
    image_env = dict(item.split("=", 1) for item in env_line.split())
    entrypoint = json.loads(next(args for keyword, args in steps if keyword == "ENTRYPOINT"))
    assert entrypoint[:2] == ["authd", "serve"], entrypoint
    config = tmp_path / "authd.toml"
    config.write_text('roles = ["center"]\nsimulators = false\n[kek]\nkind = "file"\n'
                      '[server]\nlisten = "127.0.0.1:0"\ninsecure = true\n')
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    # The dependencies come from this interpreter's site-packages read as plain directories
    # (-S: no .pth files run, so this checkout's editable install is not importable).
    import site as sitemod
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AUTHD_", "PYTHON"))}
    env.update({key: value.strip("'\"") for key, value in image_env.items()})
    env["AUTHD_DATA_DIR"] = str(data)
    env["PYTHONPATH"] = os.pathsep.join([str(site), *sitemod.getsitepackages()])
    launcher = ("import sys; from importlib.metadata import entry_points; "
                "sys.argv[0] = 'authd'; "
                "sys.exit(entry_points(group='console_scripts')['authd'].load()())")
    process = subprocess.Popen(
        [sys.executable, "-S", "-c", launcher, *entrypoint[1:2], "--config", str(config)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        port = listening_port(process, 60)  # it binds port 0 and says which
        assert port is not None, f"did not start; exit {process.poll()}"
        deadline = time.monotonic() + 60
        ok, seen = False, ""
        while not ok and process.poll() is None and time.monotonic() < deadline:
            ok, seen = healthcheck.probe(f"127.0.0.1:{port}", insecure=True, timeout=2)
            if not ok:
                time.sleep(0.2)
        assert ok, f"not serving ({seen}); exit {process.poll()}"
        imported = subprocess.run(
            [sys.executable, "-S", "-c", "import authd, simulators; print(authd.__file__, "
             "simulators.__file__)"], cwd=tmp_path, env=env, capture_output=True, text=True,
            check=True).stdout.split()
        assert all(path.startswith(str(site)) for path in imported), imported
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output[-2000:]
