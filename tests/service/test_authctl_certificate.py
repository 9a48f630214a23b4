"""authctl certificate: issue onto a disk, status, check, revoke (a teller and a backend)."""

from __future__ import annotations

import io
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from authd.ctl import main as authctl
from authd.v1 import otp_pb2 as opb
from authd.v1 import otp_pb2_grpc
from simulators.otp.generator import DisplayToken
from tests.certificate_env import CaEnv, ca_env, use_clock

PASSWORD = "hong-gil-dong 2026!"


@pytest.fixture
def ca(tmp_path: Path) -> Iterator[CaEnv]:
    with ca_env(tmp_path) as env:
        yield env


def test_teller_issues_and_revokes_backend_checks(server: Callable[..., Any], ca: CaEnv,
                                                  tmp_path: Path, capsys: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    usb = tmp_path / "usb"
    usb.mkdir()
    srv = server(certificate=ca.settings(disk_roots=[str(usb)]))
    use_clock(srv, ca.clock)
    otp = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "branch", "t"))
    serial = f"OTP-{uuid.uuid4().hex[:8]}"
    device = DisplayToken.from_uri(otp.Enroll(opb.EnrollRequest(
        serial=serial, operator_id="kim", customer_id="C-1001", parameters=opb.OtpParameters(
            kind=opb.OTP_KIND_HOTP))).provisioning_uri, serial)

    def ctl(role: str, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
        code = authctl(["--addr", srv.address, "--insecure", "--institution", "bank-a",
                        "--role", role, *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, err = ctl("branch", "certificate", "issue", "C-9", "--name", "Hong Gildong",
                         "--type", "universal", "--operator", "kim", "--document", "passport",
                         "--otp", serial, "--otp-code", device.press(), "--account",
                         "110-123-456789", "--disk", "usb", "--removable", "--secret-stdin",
                         stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert code == 0, err
    assert "fee 4,400 KRW" in out and PASSWORD not in out
    cert_serial = re.search(r"^certificate ([0-9a-f]+) \(universal, issued\)", out, re.M)
    assert cert_serial is not None
    der = next(usb.rglob("signCert.der"))
    code, out, _ = ctl("backend", "certificate", "check", str(der))
    assert code == 0 and out.startswith("ALLOWED: valid")
    code, out, _ = ctl("branch", "certificate", "revoke", cert_serial.group(1), "--reason",
                       "key-leaked", "--operator", "kim")
    assert code == 0 and "revoked (key_leaked)" in out
    code, out, _ = ctl("backend", "certificate", "check", str(der))
    assert code == 3 and out.startswith("REFUSED: revoked")
    code, _, err = ctl("branch", "certificate", "revoke", cert_serial.group(1), "--reason",
                       "key-leaked", "--operator", "kim")
    assert code == 1 and "FAILED_PRECONDITION" in err and "already revoked" in err
