"""authctl token ... against a real daemon over mTLS, on SoftHSM2 tokens."""

from __future__ import annotations

import io
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from authd import pki
from authd.ctl import main as authctl
from simulators.certificate.ca import DemoCa
from simulators.token.softhsm import SoftHsmToken, process_env


@pytest.fixture
def token() -> SoftHsmToken:
    return process_env().init_token(f"ctl-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def branch(server: Any, tmp_path: Path) -> tuple[Any, Path]:
    pki_dir = pki.create_dev_pki(tmp_path / "pki")
    srv = server(server={"insecure": False, "tls_cert": str(pki_dir / "server.pem"),
                         "tls_key": str(pki_dir / "server.key"),
                         "client_ca": str(pki_dir / "ca.pem")},
                 token={"poll_interval": 0.1, "rescan_interval": 0.1})
    return srv, pki_dir


class Ctl:
    def __init__(self, capsys: Any, monkeypatch: pytest.MonkeyPatch,
                 where: tuple[Any, Path]) -> None:
        self.capsys, self.monkeypatch, (self.srv, self.pki) = capsys, monkeypatch, where

    def __call__(self, identity: str, *args: str,
                 stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            self.monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
        code = authctl(["--addr", f"localhost:{self.srv.port}", "--pki", str(self.pki),
                        "--identity", identity, *args])
        out = self.capsys.readouterr()
        return code, out.out, out.err


@pytest.fixture
def ctl(capsys: Any, monkeypatch: pytest.MonkeyPatch, branch: Any) -> Ctl:
    monkeypatch.delenv("AUTHCTL_TOKEN_SESSION", raising=False)
    return Ctl(capsys, monkeypatch, branch)


def test_issuance_signing_and_registration(ctl: Ctl, token: SoftHsmToken,
                                           tmp_path: Path) -> None:
    code, out, _ = ctl("bank-a-teller", "token", "list")
    assert code == 0 and f'token {token.serial} "{token.label}": SoftHSM project' in out
    assert "authd-kek" not in out

    code, out, _ = ctl("bank-a-teller", "token", "login", token.serial, "--pin-stdin",
                       stdin=token.pin + "\n")
    assert code == 0 and out.startswith(f'logged in to token {token.serial} "{token.label}"\n')
    session = re.search(r"  session (\S+)\n", out).group(1)  # type: ignore[union-attr]
    assert f"export AUTHCTL_TOKEN_SESSION={session}" in out and token.pin not in out

    public_pem = tmp_path / "hong.pub.pem"
    code, out, _ = ctl("bank-a-teller", "token", "generate", "--session", session, "--label",
                       "hong", "--out", str(public_pem))
    assert code == 0
    key_id = re.match(r'key ([0-9a-f]{32}) "hong": ec-p256, private key, no certificate\n',
                      out).group(1)  # type: ignore[union-attr]
    assert f"public key written to {public_pem}" in out
    assert isinstance(serialization.load_pem_public_key(public_pem.read_bytes()),
                      ec.EllipticCurvePublicKey)

    ctl.monkeypatch.setenv("AUTHCTL_TOKEN_SESSION", session)  # the handle from here on
    csr_pem = tmp_path / "hong.csr"
    code, out, _ = ctl("bank-a-teller", "token", "csr", key_id, "--subject",
                       "CN=Hong Gildong,O=bank-a,C=KR", "--out", str(csr_pem))
    assert code == 0 and out == f"certificate request for CN=Hong Gildong,O=bank-a,C=KR " \
                                f"written to {csr_pem}\n"
    csr = x509.load_pem_x509_csr(csr_pem.read_bytes())
    assert csr.is_signature_valid
    cert_der = DemoCa().issue(csr.public_bytes(serialization.Encoding.DER))
    cert_file = tmp_path / "hong.der"
    cert_file.write_bytes(cert_der)
    code, out, _ = ctl("bank-a-teller", "token", "import-cert", str(cert_file))
    assert code == 0 and out.startswith("certificate stored next to its key\n")
    assert f'certificate for key {key_id} "hong": CN=Hong Gildong,O=bank-a,C=KR' in out

    code, out, _ = ctl("bank-a-teller", "token", "certs")
    assert re.search(r"valid \S+ \S+ to \S+ \S+: valid\n  renewable from \S+ until "
                     r"\S+23:59:59\+09:00", out)
    code, out, _ = ctl("bank-a-teller", "token", "keys", "--token", token.serial)
    assert code == 0 and f'key {key_id} "hong": ec-p256' in out and "certificate" in out

    data = tmp_path / "transfer.txt"
    data.write_bytes(b"transfer 1000 KRW to 110-123-456789")
    code, out, _ = ctl("bank-a-teller", "token", "sign", key_id, "--input", str(data))
    assert code == 0 and re.fullmatch(r"[0-9a-f]+\n", out)
    public = x509.load_der_x509_certificate(cert_der).public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(bytes.fromhex(out), data.read_bytes(), ec.ECDSA(hashes.SHA256()))
    sig = tmp_path / "sig.der"
    code, out, _ = ctl("bank-a-teller", "token", "sign", key_id, "--out", str(sig),
                       stdin="from standard input")
    assert code == 0 and out == f"ecdsa sha256 signature ({sig.stat().st_size} bytes) " \
                                f"written to {sig}\n"
    public.verify(sig.read_bytes(), b"from standard input", ec.ECDSA(hashes.SHA256()))

    # registration at the branch exempts the customer's transfers at this bank only
    code, out, _ = ctl("bank-a-backend", "token", "exemption", token.serial, "--customer", "C-1")
    assert code == 3 and out.startswith("NOT EXEMPT")
    code, _, err = ctl("bank-a-backend", "token", "register", "--customer", "C-1",
                       "--operator", "kim")
    assert code == 1 and err.startswith("authctl: PERMISSION_DENIED: ")
    code, out, _ = ctl("bank-a-teller", "token", "register", "--customer", "C-1",
                       "--operator", "kim")
    assert code == 0
    assert f"token {token.serial} for customer C-1 at bank-a: active" in out
    assert "at terminal bank-a-teller by kim" in out
    code, out, _ = ctl("bank-a-backend", "token", "exemption", token.serial, "--customer", "C-1")
    assert code == 0 and out.startswith("EXEMPT from additional authentication")
    code, out, _ = ctl("bank-b-backend", "token", "exemption", token.serial, "--customer", "C-1")
    assert code == 3
    code, out, _ = ctl("bank-a-teller", "token", "deregister", token.serial, "--customer",
                       "C-1", "--operator", "kim", "--reason", "customer request")
    assert code == 0 and f"token {token.serial} for customer C-1 at bank-a: ended " in out
    code, out, _ = ctl("bank-a-backend", "token", "exemption", token.serial, "--customer", "C-1")
    assert code == 3

    # the handle is the teller's only; logout ends it
    code, _, err = ctl("bank-b-teller", "token", "keys")
    assert code == 1 and "authctl: " in err
    code, out, _ = ctl("bank-a-teller", "token", "logout")
    assert code == 0 and out.startswith("logged out")
    code, _, err = ctl("bank-a-teller", "token", "keys")
    assert code == 1 and "authctl: " in err


def test_wrong_pin_lock_and_unblock(ctl: Ctl, token: SoftHsmToken) -> None:
    for left in (2, 1):
        code, out, _ = ctl("bank-a-teller", "token", "login", token.serial, "--pin-stdin",
                           stdin="000000\n")
        assert code == 3 and out == f"WRONG PIN: {left} attempt(s) left before the token's " \
                                    f"PIN is locked\n"
    code, _, err = ctl("bank-a-teller", "token", "login", token.serial, "--pin-stdin",
                       stdin="000000\n")
    assert code == 1 and err.startswith("authctl: FAILED_PRECONDITION: ") and "locked" in err
    assert "000000" not in err

    answers = iter([token.so_pin, "654321", "654321"])
    ctl.monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    code, out, _ = ctl("bank-a-teller", "token", "unblock-pin", token.serial, "--operator",
                       "kim", "--reason", "customer locked it")
    assert code == 0 and out.startswith("PIN unblocked and set\n")
    code, out, _ = ctl("bank-a-teller", "token", "login", token.serial, "--pin-stdin",
                       stdin="654321\n")
    assert code == 0 and "logged in" in out


def test_bad_input(ctl: Ctl, token: SoftHsmToken, tmp_path: Path) -> None:
    code, _, err = ctl("bank-a-teller", "token", "keys")
    assert code == 2 and "log in first (authctl token login SERIAL)" in err
    code, _, err = ctl("bank-a-teller", "token", "sign", "zz", "--session", "x", stdin="data")
    assert code == 2 and "the key id must be hex digits" in err
    code, _, err = ctl("bank-a-teller", "token", "login", "00000000deadbeef", "--pin-stdin",
                       stdin="123456\n")
    assert code == 1 and "UNAVAILABLE" in err and "not present" in err

    code, out, _ = ctl("bank-a-teller", "token", "login", token.serial, "--pin-stdin",
                       stdin=token.pin + "\n")
    session = re.search(r"  session (\S+)\n", out).group(1)  # type: ignore[union-attr]
    code, out, _ = ctl("bank-a-teller", "token", "generate", "--session", session, "--label",
                       "kim", "--spec", "rsa-2048")
    assert code == 0
    listed = ctl("bank-a-teller", "token", "keys", "--session", session)[1]
    assert listed.startswith("key ") and '"kim": rsa-2048, private key, no certificate' in listed
    key_id = listed.split()[1]

    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    code, _, err = ctl("bank-a-teller", "token", "import-cert", str(junk), "--session", session)
    assert code == 1 and "INVALID_ARGUMENT" in err
    code, _, err = ctl("bank-a-teller", "token", "sign", key_id, "--session", session,
                       "--digest", "abcd")
    assert code == 1 and "INVALID_ARGUMENT" in err
    code, _, err = ctl("bank-a-teller", "token", "sign", key_id, "--session", session,
                       "--digest", "00" * 32, "--algorithm", "ecdsa-sha256")
    assert code == 1 and "INVALID_ARGUMENT" in err
    code, _, err = ctl("bank-a-teller", "token", "sign", "00" * 16, "--session", session,
                       "--digest", "00" * 32)
    assert code == 1 and "NOT_FOUND" in err
    code, _, err = ctl("bank-a-teller", "token", "generate", "--session", session, "--label",
                       "x", "--out", str(tmp_path / "no-such-dir" / "x.pem"))
    assert code == 2 and "not a file in an existing directory" in err
    # nothing above changed the token
    assert ctl("bank-a-teller", "token", "keys", "--session", session)[1] == listed
    with pytest.raises(SystemExit):
        ctl("bank-a-teller", "token", "login", token.serial, "--pin", token.pin)
    assert "--pin VALUE is refused: a secret on the command line stays in the shell history" \
        in ctl.capsys.readouterr().err
