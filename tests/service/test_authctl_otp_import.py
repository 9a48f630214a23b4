"""authctl otp import against a real daemon over mTLS: the key or password from a file,
standard input or the terminal, never from the command line."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from authd import pki
from authd.ctl import main as authctl
from devices.otp.codes import hotp

DATA = Path(__file__).resolve().parents[1] / "data" / "pskc"
RFC_SEED = b"12345678901234567890"


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


def secret_file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text + "\n")
    path.chmod(0o600)
    return str(path)


def test_dry_run_then_import_with_a_key_file_then_register_and_verify(capsys, tls_server,
                                                                      tmp_path):
    srv, pki_dir = tls_server
    bulk = str(DATA / "bulk-aes128.pskcxml")
    key = secret_file(tmp_path, "transport.key", "00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f")
    code, out, _ = run(capsys, srv, pki_dir, "bank-a-teller", "otp", "import", bulk,
                       "--dry-run", "--operator", "kim", "--key-file", key)
    assert code == 0 and out.startswith("dry run, nothing changed: 3 OTP device(s) would be")
    assert "PSKC-H-0001" in out and "next counter 5" in out and "30 s step, drift 1" in out
    code, _, err = run(capsys, srv, pki_dir, "bank-a-teller", "otp", "status", "PSKC-H-0001")
    assert code == 1 and "NOT_FOUND" in err  # the dry run enrolled nothing

    code, out, _ = run(capsys, srv, pki_dir, "bank-a-teller", "otp", "import", bulk,
                       "--operator", "kim", "--key-file", key)
    assert code == 0 and out.startswith("imported 3 OTP device(s), registered nowhere yet")
    code, out, _ = run(capsys, srv, pki_dir, "bank-a-teller", "otp", "register",
                       "PSKC-H-0001", "--operator", "lee", "--customer", "A-7")
    assert code == 0 and "issued by bank-a" in out and "next counter 5" in out
    code, out, _ = run(capsys, srv, pki_dir, "bank-a-backend", "otp", "verify", "PSKC-H-0001",
                       hotp(RFC_SEED, 5))
    assert code == 0 and out.startswith("ACCEPTED")

    code, _, err = run(capsys, srv, pki_dir, "bank-a-teller", "otp", "import", bulk,
                       "--operator", "kim", "--key-file", key)
    assert code == 1 and "ALREADY_EXISTS" in err and "PSKC-H-0001 (key package 1)" in err


def test_a_wrong_key_is_refused_and_no_secret_is_shown(capsys, tls_server, tmp_path):
    srv, pki_dir = tls_server
    wrong = "ff" * 16
    key = secret_file(tmp_path, "wrong.key", wrong)
    code, out, err = run(capsys, srv, pki_dir, "bank-a-teller", "otp", "import",
                         str(DATA / "rfc6030-figure6.pskcxml"), "--operator", "kim",
                         "--key-file", key)
    assert code == 1 and "INVALID_ARGUMENT" in err and "key or password right" in err
    assert wrong not in out + err
    garbage = secret_file(tmp_path, "garbage.key", "not-hex-secret")
    code, _, err = run(capsys, srv, pki_dir, "bank-a-teller", "otp", "import",
                       str(DATA / "rfc6030-figure6.pskcxml"), "--operator", "kim",
                       "--key-file", garbage)
    assert code != 0 and "hex digits" in err and "not-hex-secret" not in err


def test_the_key_or_password_on_the_command_line_is_refused(capsys, tls_server):
    srv, pki_dir = tls_server
    for flag in ("--key", "--password"):
        with pytest.raises(SystemExit):
            run(capsys, srv, pki_dir, "bank-a-teller", "otp", "import",
                str(DATA / "rfc6030-figure7.pskcxml"), "--operator", "kim", flag, "qwerty")
        assert "is refused" in capsys.readouterr().err


def test_password_from_standard_input_and_none_without_a_terminal(capsys, tls_server,
                                                                  monkeypatch):
    srv, pki_dir = tls_server
    figure7 = str(DATA / "rfc6030-figure7.pskcxml")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code, _, err = run(capsys, srv, pki_dir, "bank-a-teller", "otp", "import", figure7,
                       "--operator", "kim")
    assert code != 0 and "password 'My Password 1' of the PSKC file" in err
    monkeypatch.setattr(sys, "stdin", io.StringIO("qwerty\n"))
    code, out, _ = run(capsys, srv, pki_dir, "bank-a-teller", "otp", "import", figure7,
                       "--operator", "kim", "--password-stdin")
    assert code == 0 and "987654321" in out and "HOTP, 8 digits" in out
    assert "qwerty" not in out
