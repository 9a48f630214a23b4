"""authctl policy ... against a real daemon over mTLS: a teller's grades, limits, terminals and
counters, and a backend operator's decision, explained."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from authd import pki
from authd.ctl import EXIT_OK, EXIT_REFUSED
from authd.ctl import main as authctl
from devices.otp.codes import hotp
from tests.policy_bank import SEED

Bank = tuple[Any, Path]


@pytest.fixture
def bank(server: Any, tmp_path: Path) -> Bank:
    pki_dir = pki.create_dev_pki(tmp_path / "pki")
    srv = server(server={"insecure": False, "tls_cert": str(pki_dir / "server.pem"),
                         "tls_key": str(pki_dir / "server.key"),
                         "client_ca": str(pki_dir / "ca.pem")})
    return srv, pki_dir


def ctl(capsys: pytest.CaptureFixture[str], bank: Bank, identity: str,
        *args: str) -> tuple[int, str, str]:
    srv, pki_dir = bank
    code = authctl(["--addr", f"localhost:{srv.port}", "--pki", str(pki_dir),
                    "--identity", identity, *args])
    out = capsys.readouterr()
    return code, out.out, out.err


PC = ("--mac", "00:1a:2b:3c:4d:5e", "--hdd-serial", "WD-1", "--ip", "192.0.2.10")


def test_teller_and_backend_operator(capsys: pytest.CaptureFixture[str], bank: Bank):
    teller, backend = "bank-a-teller", "bank-a-backend"
    code, out, _ = ctl(capsys, bank, teller, "policy", "setup", "kim", "--operator", "lee")
    assert code == EXIT_OK and "customer kim (personal): best grade none" in out
    assert ctl(capsys, bank, teller, "otp", "enroll", "OTP-CLI-1", "--kind", "hotp",
               "--seed-hex", SEED.hex(), "--operator", "lee", "--customer", "kim")[0] == EXIT_OK
    # enrolled for the customer: the policy sees it at once (the customer model)
    code, out, _ = ctl(capsys, bank, teller, "policy", "show", "kim")
    assert code == EXIT_OK and "best grade personal safe" in out and "otp OTP-CLI-1: active" in out
    code, out, _ = ctl(capsys, bank, teller, "policy", "designate", "kim", "--label", "home",
                       *PC)
    assert code == EXIT_OK and "(branch," in out and "mac=00:1a:2b:3c:4d:5e" in out
    ctl(capsys, bank, backend, "policy", "show", "kim")
    assert ctl(capsys, bank, backend, "policy", "limits", "kim", "5000000", "20000000")[0] == 0
    code, _, err = ctl(capsys, bank, backend, "policy", "limits", "kim", "6000000", "20000000")
    assert code == 1 and "PERMISSION_DENIED" in err and "only at a branch" in err
    code, out, _ = ctl(capsys, bank, teller, "policy", "show", "kim")
    assert "own limits 5,000,000 KRW / 20,000,000 KRW" in out
    # an inactive customer is suspended until registered; register, then decide
    srv = bank[0]
    srv.app.db.run(lambda tx: tx.execute(
        "UPDATE policy_customers SET registered_at = agreed_at WHERE customer_id = 'kim'"))
    code, out, _ = ctl(capsys, bank, backend, "policy", "authorize", "kim", "4000000",
                       "--to", "110-1", "--otp", f"OTP-CLI-1:{hotp(SEED, 0)}",
                       "--key", "cli-key-00001", *PC)
    assert code == EXIT_OK and out.startswith("APPROVED")
    assert "exempt from additional authentication: otp" in out
    decision = out.split()[2]
    code, out, _ = ctl(capsys, bank, backend, "policy", "authorize", "kim", "6000000",
                       "--to", "110-2", "--otp", f"OTP-CLI-1:{hotp(SEED, 1)}",
                       "--key", "cli-key-00002", *PC)
    assert code == EXIT_REFUSED and out.startswith("OVER LIMIT")
    assert "[over_per_transfer_limit]" in out and "5,000,000 KRW per transfer" in out
    code, out, _ = ctl(capsys, bank, backend, "policy", "explain", decision)
    assert code == EXIT_OK and "terminal ip=192.0.2.10" in out and "consumed 4,000,000" in out
    code, out, _ = ctl(capsys, bank, backend, "--json", "policy", "export", "kim")
    exported = json.loads(out)
    assert exported["decisions"][0]["decision_id"] == decision
    for _ in range(3):
        ctl(capsys, bank, backend, "policy", "authorize", "kim", "1", "--to", "9",
            "--otp", "OTP-CLI-1:999999", *PC)
    code, out, _ = ctl(capsys, bank, teller, "policy", "counters", "kim")
    assert code == EXIT_OK and "user password: 0 of 3 wrong" in out
    code, out, _ = ctl(capsys, bank, teller, "policy", "unlock", "kim", "account-password",
                       "--operator", "lee")
    assert code == EXIT_OK and "account password: 0 of 5 wrong" in out
    code, out, _ = ctl(capsys, bank, backend, "policy", "report-incident", "--reason", "leak",
                       "--mac", "00:1a:2b:3c:4d:5e")
    assert code == EXIT_OK and "mac=00:1a:2b:3c:4d:5e" in out
    code, out, _ = ctl(capsys, bank, teller, "policy", "check-device", *PC)
    assert code == EXIT_REFUSED and "ON THE INCIDENT LIST: mac" in out
