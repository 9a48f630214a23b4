"""authctl customer ... against a real daemon over mTLS, on SQLite and PostgreSQL: a teller
registers and deregisters a token or smartcard at the center (with the key it signs with), a
backend lists the customer's media, the registrations and asks for the exemption; another
bank learns nothing of them."""

from __future__ import annotations

import datetime
import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from authd import pki
from authd.ctl import main as authctl
from tests.nodes import serve_env


class Terminal:
    def __init__(self, srv: Any, pki_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.srv, self.pki_dir, self.capsys = srv, pki_dir, capsys

    def __call__(self, identity: str, *args: str) -> tuple[int, str, str]:
        code = authctl(["--addr", f"localhost:{self.srv.port}", "--pki", str(self.pki_dir),
                        "--identity", identity, "customer", *args])
        out = self.capsys.readouterr()
        return code, out.out, out.err


@pytest.fixture
def terminal(server: Any, store_url: str, tmp_path: Path,
             capsys: pytest.CaptureFixture[str]) -> Terminal:
    pki_dir = pki.create_dev_pki(tmp_path / "pki")
    srv = server(store_url=store_url,
                 server={"insecure": False, "tls_cert": str(pki_dir / "server.pem"),
                         "tls_key": str(pki_dir / "server.key"),
                         "client_ca": str(pki_dir / "ca.pem")})
    return Terminal(srv, pki_dir, capsys)


def _key_files(tmp_path: Path) -> tuple[Path, Path, str]:
    """A certificate (PEM) over a new key as a token holds it, a junk file, and the key's
    fingerprint as authctl shows it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hong Gildong")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(datetime.datetime(2025, 1, 1))
            .not_valid_after(datetime.datetime(2035, 1, 1))
            .sign(key, hashes.SHA256()))
    cert_file, junk = tmp_path / "token-cert.pem", tmp_path / "junk.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    junk.write_bytes(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert_file, junk, hashlib.sha256(spki).hexdigest()[:32]


def test_a_teller_registers_a_token_and_a_backend_sees_it(terminal: Terminal,
                                                            tmp_path: Path) -> None:
    cert_file, junk, fingerprint = _key_files(tmp_path)
    teller, backend = "bank-a-teller", "bank-a-backend"

    # a malformed key, a missing file and the backend role record nothing
    code, _, err = terminal(teller, "register", "token", "TOKEN-0001", "--customer", "A-1",
                            "--operator", "kim", "--public-key", str(junk))
    assert code == 1 and err.startswith("authctl: INVALID_ARGUMENT: ")
    code, _, err = terminal(teller, "register", "token", "TOKEN-0001", "--customer", "A-1",
                            "--operator", "kim", "--public-key", str(tmp_path / "none"))
    assert code == 2 and "cannot read the signing key" in err
    code, _, err = terminal(backend, "register", "token", "TOKEN-0001", "--customer", "A-1",
                            "--operator", "kim")
    assert code == 1 and err.startswith("authctl: PERMISSION_DENIED")
    code, out, _ = terminal(backend, "media", "A-1")
    assert (code, out) == (0, "customer A-1: no media registered here\n")

    code, out, err = terminal(teller, "register", "token", "TOKEN-0001", "--customer", "A-1",
                              "--operator", "kim", "--terminal", "T-9",
                              "--public-key", str(cert_file))
    assert code == 0, err
    head, facts = out.splitlines()
    assert head.endswith("hsm token TOKEN-0001 for customer A-1 at bank-a: active")
    assert "at terminal T-9 by kim" in facts and f"signing key sha256:{fingerprint}" in facts
    code, _, err = terminal(teller, "register", "token", "TOKEN-0001", "--customer", "A-1",
                            "--operator", "kim")
    assert code == 1 and err.startswith("authctl: ALREADY_EXISTS")
    # a smartcard without a key
    code, out, _ = terminal(teller, "register", "smartcard", "00112233445566778899AABBCCDDEEFF",
                            "--customer", "A-1", "--operator", "kim")
    assert code == 0 and "no signing key" in out

    code, out, _ = terminal(backend, "media", "A-1")
    assert code == 0 and out.splitlines()[0] == "customer A-1: 2 medium/media"
    assert "hsm token TOKEN-0001: active" in out and "registered at a branch, terminal T-9" in out
    assert "smartcard 00112233445566778899AABBCCDDEEFF: active" in out
    code, out, _ = terminal(backend, "registrations", "--customer", "A-1", "--kind", "token")
    assert code == 0 and "TOKEN-0001" in out and "smartcard" not in out
    code, out, _ = terminal(backend, "exemption", "TOKEN-0001", "--customer", "A-1")
    assert code == 0 and out.startswith("EXEMPT from additional authentication")
    code, out, _ = terminal(backend, "exemption", "00112233445566778899AABBCCDDEEFF",
                            "--customer", "A-1", "--kind", "smartcard")
    assert code == 3 and out.startswith("NOT EXEMPT")
    code, out, _ = terminal(backend, "exemption", "TOKEN-0001", "--customer", "A-2")
    assert code == 3 and out.startswith("NOT EXEMPT")

    # another bank asking about the same reference and serial learns nothing
    code, out, _ = terminal("bank-b-backend", "media", "A-1")
    assert (code, out) == (0, "customer A-1: no media registered here\n")
    code, out, _ = terminal("bank-b-backend", "exemption", "TOKEN-0001", "--customer", "A-1")
    assert code == 3 and "bank-a" not in out and "registration" not in out
    code, out, _ = terminal("bank-b-backend", "registrations", "--serial", "TOKEN-0001")
    assert (code, out) == (0, "no registrations\n")

    # deregistered: no longer exempt, listed as ended with --all
    code, out, err = terminal(teller, "deregister", "token", "TOKEN-0001", "--customer", "A-1",
                              "--operator", "kim", "--reason", "lost")
    assert code == 0, err
    assert "hsm token TOKEN-0001 for customer A-1 at bank-a: ended" in out
    code, _, err = terminal(teller, "deregister", "token", "TOKEN-0001", "--customer", "A-1",
                            "--operator", "kim", "--reason", "lost")
    assert code == 1 and err.startswith("authctl: NOT_FOUND")
    code, out, _ = terminal(backend, "exemption", "TOKEN-0001", "--customer", "A-1")
    assert code == 3
    code, out, _ = terminal(backend, "media", "A-1", "--all")
    assert "hsm token TOKEN-0001: deregistered" in out
    code, out, _ = terminal(backend, "registrations", "--serial", "TOKEN-0001", "--all")
    assert ": ended " in out


def test_authctl_customer_runs_as_its_own_program(terminal: Terminal, tmp_path: Path) -> None:
    """The installed command's way in (``python -m authd.ctl``), with --json for scripts and
    the key from standard input."""
    cert_file, _, _fingerprint = _key_files(tmp_path)
    base = [sys.executable, "-m", "authd.ctl", "--addr", f"localhost:{terminal.srv.port}",
            "--pki", str(terminal.pki_dir)]
    done = subprocess.run([*base, "--identity", "bank-a-teller", "--json", "customer",
                           "register", "smartcard", "A1B2C3D4E5F60718", "--customer", "B-7",
                           "--operator", "lee", "--public-key", "-"],
                          input=cert_file.read_bytes(), env=serve_env(), capture_output=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    import json

    reg = json.loads(done.stdout)
    assert reg["kind"] == "MEDIUM_KIND_SMARTCARD" and reg["customer_id"] == "B-7"
    assert reg["active"] and reg["public_key"]
    done = subprocess.run([*base, "--identity", "bank-a-backend", "customer", "exemption",
                           "A1B2C3D4E5F60718", "--customer", "B-7", "--kind", "smartcard"],
                          env=serve_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 3 and done.stdout.startswith("NOT EXEMPT")


def test_a_teller_changes_a_customers_kind(terminal: Terminal) -> None:
    teller = "bank-a-teller"
    code = authctl(["--addr", f"localhost:{terminal.srv.port}", "--pki",
                    str(terminal.pki_dir), "--identity", teller, "policy", "setup", "A-5",
                    "--kind", "personal", "--operator", "kim"])
    terminal.capsys.readouterr()
    assert code == 0
    code, out, _ = terminal(teller, "kind", "A-5", "corporate", "--operator", "kim",
                            "--reason", "incorporated")
    assert code == 0 and "customer A-5: personal -> corporate" in out
    code, out, _ = terminal(teller, "kind", "A-5", "corporate", "--operator", "kim")
    assert code == 0 and "is corporate already: nothing changed" in out
    code, _, err = terminal(teller, "kind", "A-5", "personal", "--operator", "kim",
                            "--master-administrator")
    assert code == 1 and err.startswith("authctl: INVALID_ARGUMENT")
    code, _, err = terminal("bank-b-teller", "kind", "A-5", "personal", "--operator", "lee")
    assert code == 1 and err.startswith("authctl: NOT_FOUND") and "bank-a" not in err
