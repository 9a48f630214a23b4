"""Imports go down only, and only drivers/ touches hardware libraries (DESIGN.md, "Layers").

- drivers/ alone imports the hardware libraries (python-pkcs11, pyscard, hidapi, liblouis);
- devices/ is pure domain logic: no gRPC, no store, no drivers, no simulators;
- drivers/ knows nothing above it;
- simulators/ stand in for hardware: no gRPC, no daemon;
- production code (authd/, devices/, drivers/) names no simulator; the demo alone may, since
  driving the simulators is its job.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HARDWARE = {"smartcard", "pkcs11", "hid", "louis"}
STORE = {"psycopg", "sqlite3"}
GRPC = {"grpc", "grpc_health", "grpc_reflection", "grpc_status"}
FORBIDDEN: dict[str, set[str]] = {
    "devices": HARDWARE | GRPC | STORE | {"ctypes", "authd", "drivers", "simulators"},
    "drivers": GRPC | STORE | {"authd", "devices", "simulators"},
    "simulators": HARDWARE | GRPC | STORE | {"authd"},
    "authd": HARDWARE | {"simulators"},
}
# The demo drives simulated devices on purpose; it is not part of a deployment.
MAY_USE_SIMULATORS = ("authd/demo.py", "authd/demo_steps/")


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def sources(layer: str) -> list[Path]:
    return [p for p in sorted((ROOT / layer).rglob("*.py"))
            if not p.relative_to(ROOT).as_posix().startswith("authd/v1/")]


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_imports_go_down_only(layer: str) -> None:
    bad = []
    for path in sources(layer):
        rel = path.relative_to(ROOT).as_posix()
        forbidden = set(FORBIDDEN[layer])
        if rel.startswith(MAY_USE_SIMULATORS):
            forbidden.discard("simulators")
        hit = imported_packages(path) & forbidden
        if hit:
            bad.append(f"{rel} imports {', '.join(sorted(hit))}")
    assert not bad, "layer violations:\n" + "\n".join(bad)


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import pkcs11\nfrom simulators.hid_otp import SimulatorBus\n"
                     "from . import sibling\n")
    assert imported_packages(probe) == {"pkcs11", "simulators"}


def test_every_medium_has_the_same_shape() -> None:
    from authd.features import FEATURES

    for ref in FEATURES:
        folder = ROOT / "authd" / ref.name
        for role in ("feature.py", "settings.py"):
            assert (folder / role).is_file(), f"authd/{ref.name}/{role} is missing"
    for medium in ("otp", "hid_otp", "security_card", "smartcard", "token", "certificate"):
        folder = ROOT / "authd" / medium
        for role in ("servicer.py", "convert.py", "cli.py", "service.py", "repository.py"):
            assert (folder / role).is_file(), f"authd/{medium}/{role} is missing"
        # The roles are not mixed: the SQL is in repository.py, not in the logic or the
        # gRPC adapter (README, "One shape per medium").
        for role in ("service.py", "servicer.py", "convert.py"):
            text = (folder / role).read_text()
            for statement in ("SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM"):
                assert f'"{statement}' not in text, f"authd/{medium}/{role} holds SQL"
        assert (ROOT / "devices" / medium).is_dir(), f"devices/{medium} is missing"
        assert (ROOT / "simulators" / medium).is_dir(), f"simulators/{medium} is missing"
    assert not (ROOT / "authd" / "otp" / "center.py").exists(), "the OTP center is service.py"
