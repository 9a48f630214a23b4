"""authctl against a real daemon over mTLS, as a teller and a backend operator would use it."""

from __future__ import annotations

from pathlib import Path

import pytest

from authd import pki
from authd.ctl import main as authctl


@pytest.fixture
def tls_server(server, tmp_path: Path):
    pki_dir = pki.create_dev_pki(tmp_path / "pki")
    srv = server(server={"insecure": False, "tls_cert": str(pki_dir / "server.pem"),
                         "tls_key": str(pki_dir / "server.key"),
                         "client_ca": str(pki_dir / "ca.pem")})
    return srv, pki_dir


def run(capsys, srv, pki_dir: Path, identity: str, *args: str) -> tuple[int, str, str]:
    code = authctl(["--addr", f"localhost:{srv.port}", "--pki", str(pki_dir),
                    "--identity", identity, *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_teller_and_backend_workflow(capsys, tls_server):
    srv, pki_dir = tls_server
    code, out, _ = run(capsys, srv, pki_dir, "bank-a-teller", "whoami")
    assert code == 0 and "institution bank-a" in out and "role        branch" in out

    code, out, _ = run(capsys, srv, pki_dir, "bank-a-teller", "otp", "enroll", "OTP-CTL-1",
                       "--kind", "hotp", "--seed-hex", "3132333435363738393031323334353637383930",
                       "--operator", "kim", "--customer", "C-100")
    assert code == 0 and "OTP device OTP-CTL-1: active" in out and "HOTP" in out
    assert "customer C-100" in out
    assert "seed" not in out.lower() or "shown once" not in out  # given seed: not echoed

    code, out, _ = run(capsys, srv, pki_dir, "bank-a-backend", "otp", "verify", "OTP-CTL-1",
                       "755224")  # RFC 4226 counter 0
    assert code == 0 and out.startswith("ACCEPTED")
    code, out, _ = run(capsys, srv, pki_dir, "bank-a-backend", "otp", "verify", "OTP-CTL-1",
                       "755224")
    assert out.startswith("REPLAYED") and code == 3

    code, out, err = run(capsys, srv, pki_dir, "bank-a-backend", "otp", "unlock", "OTP-CTL-1",
                         "--operator", "x", "--reason", "y")
    assert code == 1 and "PERMISSION_DENIED" in err

    code, out, _ = run(capsys, srv, pki_dir, "bank-a-teller", "otp", "status", "OTP-CTL-1")
    assert "registered at bank-a" in out and "next counter 1" in out

    code, out, _ = run(capsys, srv, pki_dir, "bank-a-teller", "--json", "otp", "status",
                       "OTP-CTL-1")
    assert '"state": "DEVICE_STATE_ACTIVE"' in out

    code, out, _ = run(capsys, srv, pki_dir, "bank-a-teller", "audit", "OTP-CTL-1")
    assert "otp.enroll" in out and "otp.verify" in out and "755224" not in out


def test_online_registration_with_the_devices_code(capsys, tls_server):
    srv, pki_dir = tls_server
    run(capsys, srv, pki_dir, "bank-a-teller", "otp", "enroll", "OTP-CTL-2", "--kind", "hotp",
        "--seed-hex", "3132333435363738393031323334353637383930", "--operator", "kim",
        "--customer", "A-1")
    # RFC 4226: counter 0 is 755224, counter 1 is 287082
    code, _, err = run(capsys, srv, pki_dir, "bank-b-backend", "otp", "register", "OTP-CTL-2",
                       "123456", "--strong-auth", "--customer", "B-2")
    assert code == 1 and "PERMISSION_DENIED" in err and "refused" in err
    code, _, err = run(capsys, srv, pki_dir, "bank-b-backend", "otp", "register", "OTP-CTL-2",
                       "--strong-auth", "--customer", "B-2")
    assert code == 1 and "INVALID_ARGUMENT" in err
    code, out, _ = run(capsys, srv, pki_dir, "bank-b-backend", "otp", "register", "OTP-CTL-2",
                       "755224", "--strong-auth", "--customer", "B-2")
    assert code == 0 and "registered at bank-b" in out and "(online)" in out
    assert "customer B-2" in out and "A-1" not in out
    assert "bank-a" not in out and "issued by another institution" in out
    assert "consecutive failures 0" in out


def test_missing_identity_is_a_clear_error(tls_server):
    srv, pki_dir = tls_server
    with pytest.raises(SystemExit, match="say who you are"):
        authctl(["--addr", f"localhost:{srv.port}", "--pki", str(pki_dir), "whoami"])
    with pytest.raises(SystemExit, match="not found"):
        authctl(["--addr", f"localhost:{srv.port}", "--pki", str(pki_dir), "--identity",
                 "nobody", "whoami"])
