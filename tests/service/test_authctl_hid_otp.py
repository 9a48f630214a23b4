"""authctl hid ... against a real daemon over mTLS, on the simulated USB HID bus."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from authd import pki
from authd.ctl import main as authctl

SERIAL = "12345678"
OTP_SERIAL = "HID-0012345678"


def tls(server: Any, tmp_path: Path, **config: Any) -> tuple[Any, Path]:
    pki_dir = pki.create_dev_pki(tmp_path / "pki")
    srv = server(server={"insecure": False, "tls_cert": str(pki_dir / "server.pem"),
                         "tls_key": str(pki_dir / "server.key"),
                         "client_ca": str(pki_dir / "ca.pem")}, **config)
    return srv, pki_dir


@pytest.fixture
def branch(server: Any, tmp_path: Path) -> tuple[Any, Path]:
    return tls(server, tmp_path, hid_otp={"monitor_interval": 0})


def ctl(capsys: pytest.CaptureFixture[str], where: tuple[Any, Path], identity: str,
        *args: str) -> tuple[int, str, str]:
    srv, pki_dir = where
    code = authctl(["--addr", f"localhost:{srv.port}", "--pki", str(pki_dir),
                    "--identity", identity, *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_teller_provisions_a_device_and_its_codes_verify(capsys: Any, branch: Any) -> None:
    code, out, _ = ctl(capsys, branch, "bank-a-teller", "hid", "list")
    assert code == 0 and out == "no OTP HID device attached\n"

    code, out, _ = ctl(capsys, branch, "bank-a-teller", "hid", "sim", "plug", SERIAL)
    assert code == 0 and out.startswith(f"simulated device {SERIAL} plugged in at ")
    code, out, _ = ctl(capsys, branch, "bank-a-teller", "hid", "list")
    assert out.splitlines() == [
        f"device {SERIAL}  1050:0407  firmware 5.4.3",
        out.splitlines()[1],
        "  slot 1 empty, slot 2 empty",
        "  not provisioned by authd",
    ] and out.splitlines()[1].startswith("  path ")

    # a backend cannot provision; nothing is programmed or enrolled
    code, _, err = ctl(capsys, branch, "bank-a-backend", "hid", "provision", SERIAL,
                       "--operator", "T-0042", "--customer", "C-1")
    assert code == 1 and err.startswith("authctl: PERMISSION_DENIED: ")
    code, out, _ = ctl(capsys, branch, "bank-a-teller", "hid", "list")
    assert "slot 1 empty, slot 2 empty" in out

    code, out, _ = ctl(capsys, branch, "bank-a-teller", "hid", "provision", SERIAL,
                       "--operator", "T-0042", "--customer", "C-1")
    assert code == 0
    assert out.splitlines()[:2] == [
        f"device {SERIAL} provisioned as OTP device {OTP_SERIAL} at bank-a for customer C-1",
        "  6-digit HOTP codes on a short press (slot 1), identification key set (slot 2)",
    ]
    code, out, _ = ctl(capsys, branch, "bank-a-teller", "--json", "hid", "list")
    (device,) = json.loads(out)["devices"]
    assert device["provisioned"] and device["otp_serial"] == OTP_SERIAL
    assert device["slot1_configured"] and device["slot2_configured"]

    code, out, _ = ctl(capsys, branch, "bank-a-teller", "hid", "sim", "press", SERIAL)
    typed = re.fullmatch(r"the simulated device typed: (\d{6})\n", out)
    assert code == 0 and typed
    code, out, _ = ctl(capsys, branch, "bank-a-backend", "otp", "verify", OTP_SERIAL,
                       typed.group(1))
    assert code == 0 and out.startswith("ACCEPTED")
    code, out, _ = ctl(capsys, branch, "bank-a-teller", "hid", "sim", "press", SERIAL, "--long")
    assert out == "the simulated device typed nothing (slot 2 types no code)\n"

    code, out, _ = ctl(capsys, branch, "bank-a-teller", "hid", "identify", SERIAL)
    assert code == 0 and out.startswith(f"IDENTIFIED: device {SERIAL}\n")
    assert f"OTP device {OTP_SERIAL}, provisioned by bank-a on " in out

    # a second, factory-fresh device does not identify
    code, out, _ = ctl(capsys, branch, "bank-a-teller", "hid", "sim", "plug", "87654321")
    code, out, _ = ctl(capsys, branch, "bank-a-teller", "hid", "identify", "87654321")
    assert code == 3 and out.startswith("NOT PROVISIONED: device 87654321")

    code, out, _ = ctl(capsys, branch, "bank-a-teller", "hid", "sim", "unplug", SERIAL)
    assert code == 0 and out == f"simulated device {SERIAL} pulled out\n"
    code, out, _ = ctl(capsys, branch, "bank-a-teller", "hid", "list")
    assert SERIAL not in out and "device 87654321" in out
    code, _, err = ctl(capsys, branch, "bank-a-teller", "hid", "sim", "unplug", SERIAL)
    assert code == 1 and "NOT_FOUND" in err and SERIAL in err


def test_bad_input(capsys: Any, monkeypatch: pytest.MonkeyPatch, branch: Any) -> None:
    with pytest.raises(SystemExit) as exited:
        ctl(capsys, branch, "bank-a-teller", "hid", "provision", "HID-1", "--operator", "x",
            "--customer", "C-1")
    assert exited.value.code == 2
    assert "a device serial is a number, not 'HID-1'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ctl(capsys, branch, "bank-a-teller", "hid", "provision", SERIAL, "--customer", "C-1")
    assert "--operator" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ctl(capsys, branch, "bank-a-teller", "hid", "provision", SERIAL, "--operator", "x")
    assert "--customer" in capsys.readouterr().err

    ctl(capsys, branch, "bank-a-teller", "hid", "sim", "plug", SERIAL)
    monkeypatch.setattr(sys, "stdin", io.StringIO("not-hex-code\n"))
    code, _, err = ctl(capsys, branch, "bank-a-teller", "hid", "provision", SERIAL,
                       "--operator", "T-1", "--customer", "C-1", "--access-code-stdin")
    assert code == 1 and "INVALID_ARGUMENT: current_access_code must be hex digits" in err
    with pytest.raises(SystemExit):
        ctl(capsys, branch, "bank-a-teller", "hid", "provision", SERIAL, "--operator", "T-1",
            "--customer", "C-1", "--digits", "7")
    assert "invalid choice: 7" in capsys.readouterr().err
    code, out, _ = ctl(capsys, branch, "bank-a-teller", "hid", "list")
    assert "slot 1 empty, slot 2 empty" in out and "not provisioned" in out

    code, _, err = ctl(capsys, branch, "bank-a-teller", "hid", "identify", "99999999")
    assert code == 1 and "NOT_FOUND" in err
    code, _, err = ctl(capsys, branch, "bank-a-teller", "hid", "sim", "plug", SERIAL)
    assert code == 1 and "ALREADY_EXISTS" in err


def test_simulator_commands_on_a_daemon_with_real_devices(capsys: Any, server: Any,
                                                          tmp_path: Path) -> None:
    pytest.importorskip("hid")
    real = tls(server, tmp_path, hid_otp={"backend": "hidapi", "monitor_interval": 0})
    code, _, err = ctl(capsys, real, "bank-a-teller", "hid", "sim", "plug")
    assert code == 2
    assert err == ('authctl: this daemon has no HID simulator: it drives real devices '
                   '([hid_otp] backend = "hidapi")\n')
