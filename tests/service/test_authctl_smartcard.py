"""authctl smartcard ... against a real daemon over mTLS, on pcscd + vpcd + the virtual PIV card."""
# ruff: noqa: F811  (pytest fixtures imported from tests.pcsc_env are used as arguments)

from __future__ import annotations

import io
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from authd import pki
from authd.ctl import main as authctl
from authd.smartcard.feature import SmartcardFeature
from simulators.smartcard import VirtualCardSlot
from simulators.smartcard.issuer import CardIssuer
from tests.conftest import wait_for
from tests.pcsc_env import (  # noqa: F401  (fixtures)
    READERS,
    CardFactory,
    Pcscd,
    card,
    card_factory,
    pcscd,
    running_pcscd,
)

READER = READERS[0]
DEFAULT_MANAGEMENT_KEY = "010203040506070801020304050607080102030405060708"


def branch_terminal(server: Any, tmp_path: Path, cards_in: int = 1) -> tuple[Any, Path]:
    pki_dir = pki.create_dev_pki(tmp_path / "pki")
    srv = server(server={"insecure": False, "tls_cert": str(pki_dir / "server.pem"),
                         "tls_key": str(pki_dir / "server.key"),
                         "client_ca": str(pki_dir / "ca.pem")})
    # the daemon's reader monitor sees pcscd and the inserted card(s)
    service = srv.app.require(SmartcardFeature).service

    def ready() -> bool:
        snap = service.snapshot()
        cards = sum(atr is not None for atr in snap.readers.values())
        return bool(snap.available) and cards == cards_in

    assert wait_for(ready)
    return srv, pki_dir


def ctl(capsys: pytest.CaptureFixture[str], where: tuple[Any, Path], identity: str,
        *args: str, stdin: str | bytes | None = None,
        monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, str, str]:
    srv, pki_dir = where
    if stdin is not None:
        assert monkeypatch is not None
        raw = stdin.encode() if isinstance(stdin, str) else stdin
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    code = authctl(["--addr", f"localhost:{srv.port}", "--pki", str(pki_dir),
                    "--identity", identity, *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_teller_sets_up_the_card_and_the_customer_signs(
        capsys: Any, monkeypatch: pytest.MonkeyPatch, server: Any, tmp_path: Path,
        card: VirtualCardSlot) -> None:
    term = branch_terminal(server, tmp_path)
    code, out, _ = ctl(capsys, term, "bank-a-teller", "smartcard", "readers")
    assert code == 0 and out.splitlines() == [
        f"{READERS[0]}: card present, ATR {card.card.atr.hex(' ')}",
        f"{READERS[1]}: no card",
    ]
    code, out, _ = ctl(capsys, term, "bank-a-teller", "smartcard", "info")
    assert code == 0 and f"card in {READER}" in out and "application PIV (AID A000000308" in out
    code, out, _ = ctl(capsys, term, "bank-a-teller", "smartcard", "status")
    assert code == 0 and "PIN: 3 attempt(s) left" in out and "no certificates" in out
    assert f"GUID {card.card.state.serial}" in out or card.card.state.serial in out

    # a key on the card, its certificate from the bank's CA, stored next to it
    public_pem = tmp_path / "auth.pub.pem"
    mgmt = tmp_path / "mgmt.key"
    mgmt.write_text(DEFAULT_MANAGEMENT_KEY + "\n")
    code, out, _ = ctl(capsys, term, "bank-a-teller", "smartcard", "generate-key", "--slot",
                       "authentication", "--out", str(public_pem), "--management-key-file",
                       str(mgmt))
    assert code == 0 and out.splitlines() == [
        "new ec-p256 key generated on the card in slot 9A authentication (the private key "
        "never leaves the card)",
        f"  public key written to {public_pem}",
    ]
    public_key = serialization.load_pem_public_key(public_pem.read_bytes())
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    certificate = CardIssuer().issue(public_key, "Hong Gildong")
    cert_pem = tmp_path / "auth.pem"
    cert_pem.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    code, out, _ = ctl(capsys, term, "bank-a-teller", "smartcard", "import-cert",
                       str(cert_pem), "--slot", "9a")
    assert code == 0
    assert out.startswith("certificate stored in slot 9A authentication: CN=Hong Gildong\n")
    code, out, _ = ctl(capsys, term, "bank-a-teller", "smartcard", "piv-status")
    assert "slot 9A authentication: CN=Hong Gildong" in out

    # the customer signs a login challenge: message from a file, PIN from a file, hex out
    message = tmp_path / "challenge.txt"
    message.write_bytes(b"login challenge 7f3a")
    pin_file = tmp_path / "pin"
    pin_file.write_text("123456\n")
    code, out, _ = ctl(capsys, term, "bank-a-teller", "smartcard", "sign", "--slot", "9a",
                       "--input", str(message), "--pin-file", str(pin_file))
    assert code == 0 and re.fullmatch(r"[0-9a-f]+\n", out)
    certificate.public_key().verify(  # type: ignore[call-arg]
        bytes.fromhex(out), message.read_bytes(), ec.ECDSA(hashes.SHA256()))
    assert "123456" not in out

    # message on stdin, PIN on the (fake) terminal, signature to a file
    asked: list[str] = []
    monkeypatch.setattr("getpass.getpass", lambda prompt="": asked.append(prompt) or "123456")
    signature = tmp_path / "sig.der"
    code, out, _ = ctl(capsys, term, "bank-a-teller", "smartcard", "sign", "--slot",
                       "authentication", "--out", str(signature), stdin=b"transfer 1000 KRW",
                       monkeypatch=monkeypatch)
    assert code == 0 and asked == ["PIN: "]
    assert out == f"signature ({signature.stat().st_size} bytes) written to {signature}\n"
    certificate.public_key().verify(  # type: ignore[call-arg]
        signature.read_bytes(), b"transfer 1000 KRW", ec.ECDSA(hashes.SHA256()))

    # a wrong PIN signs nothing
    code, out, _ = ctl(capsys, term, "bank-a-teller", "smartcard", "sign", "--slot", "9a",
                       "--input", str(message), "--pin-stdin", stdin="000000\n",
                       monkeypatch=monkeypatch)
    assert code == 3 and out == "nothing signed\nWRONG PIN: 2 attempt(s) left\n"

    # raw APDUs: SELECT PIV, GET DATA CHUID, an unknown instruction
    code, out, _ = ctl(capsys, term, "bank-a-teller", "smartcard", "apdu",
                       "00a404000ba00000030800001000010000", "00 CB 3F FF 05 5C 03 5F C1 02 00",
                       "00ee0000")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 6
    assert lines[0] == "> 00A404000BA00000030800001000010000" and lines[1].endswith(" 9000")
    assert lines[2] == "> 00CB3FFF055C035FC10200" and lines[3].startswith("< 53")
    assert lines[4:] == ["> 00EE0000", "< 6D00"]

    # another role may not touch the card
    code, _, err = ctl(capsys, term, "bank-a-backend", "smartcard", "status", "--reader", READER)
    assert code == 1 and err.startswith("authctl: PERMISSION_DENIED: ")
    code, out, _ = ctl(capsys, term, "ops", "smartcard", "readers")
    assert code == 0 and "card present" in out  # admin may look at the readers


def test_pin_change_block_and_unblock(capsys: Any, monkeypatch: pytest.MonkeyPatch,
                                      server: Any, tmp_path: Path,
                                      card: VirtualCardSlot) -> None:
    term = branch_terminal(server, tmp_path)
    run = lambda *args, stdin=None: ctl(  # noqa: E731
        capsys, term, "bank-a-teller", "smartcard", *args, stdin=stdin, monkeypatch=monkeypatch)

    code, out, _ = run("verify-pin", "--pin-stdin", stdin="123456\n")
    assert code == 0 and out == "OK: PIN accepted (3 attempt(s) left)\n"
    code, out, _ = run("change-pin", "--pin-stdin", stdin="123456\n24682468\n")
    assert code == 0 and out == "OK: PIN changed\n"
    code, out, _ = run("change-pin", "--pin-stdin", stdin="123456\n13571357\n")
    assert code == 3 and out == "WRONG current PIN: 2 attempt(s) left\n"
    code, out, _ = run("verify-pin", "--pin-stdin", stdin="111111\n")
    assert code == 3 and out == "WRONG PIN: 1 attempt(s) left\n"
    code, out, _ = run("verify-pin", "--pin-stdin", stdin="111111\n")
    assert code == 3 and out == "BLOCKED: the PIN is blocked: unblock it with the PUK\n"
    code, out, _ = run("status")
    assert "PIN: BLOCKED: unblock with the PUK" in out

    # interactive: PUK, new PIN, new PIN again (the two must agree)
    answers = iter(["12345678", "135790", "135791"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    code, _, err = run("unblock-pin")
    assert code == 2 and err == "authctl: the two new PINs differ\n"
    answers = iter(["12345678", "135790", "135790"])
    code, out, _ = run("unblock")
    assert code == 0 and out == "OK: PIN unblocked and set\n"
    code, out, _ = ctl(capsys, term, "bank-a-teller", "--json", "smartcard", "verify-pin",
                       "--pin-stdin", stdin="135790\n", monkeypatch=monkeypatch)
    assert code == 0 and '"outcome": "OK"' in out and "135790" not in out

    code, _, err = run("verify-pin", "--pin-stdin", stdin="12\n")
    assert code == 1 and "INVALID_ARGUMENT" in err and "6 to 8" in err
    code, _, err = run("change-pin", "--pin-stdin", stdin="135790\n")
    assert code == 2 and "standard input must hold current PIN, new PIN" in err


def test_bad_input_and_reader_choice(capsys: Any, monkeypatch: pytest.MonkeyPatch,
                                     server: Any, tmp_path: Path,
                                     card_factory: CardFactory) -> None:
    card_factory(0, "first")
    card_factory(1, "second")
    term = branch_terminal(server, tmp_path, cards_in=2)
    code, _, err = ctl(capsys, term, "bank-a-teller", "smartcard", "status")
    assert code == 2 and err == (f"authctl: cards in 2 readers: pick one with --reader "
                                 f"({READERS[0]}; {READERS[1]})\n")
    code, out, _ = ctl(capsys, term, "bank-a-teller", "smartcard", "status", "--reader",
                       READERS[1])
    assert code == 0 and f"PIV card in {READERS[1]}" in out
    code, _, err = ctl(capsys, term, "bank-a-teller", "smartcard", "info", "--reader", "Nope")
    assert code == 1 and "NOT_FOUND" in err and "Nope" in err

    r0 = ("--reader", READERS[0])
    for apdus, message in [(["00a4zz"], "an APDU must be hex digits"),
                           (["00a4"], "an APDU is at least 4 bytes")]:
        code, _, err = ctl(capsys, term, "bank-a-teller", "smartcard", "apdu", *r0, *apdus)
        assert code == 2 and message in err

    not_a_cert = tmp_path / "junk.pem"
    not_a_cert.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    code, _, err = ctl(capsys, term, "bank-a-teller", "smartcard", "import-cert", *r0,
                       str(not_a_cert), "--slot", "9c")
    assert code == 2 and "is not an X.509 certificate (PEM or DER)" in err
    code, _, err = ctl(capsys, term, "bank-a-teller", "smartcard", "import-cert", *r0,
                       str(tmp_path / "missing.der"), "--slot", "9c")
    assert code == 2 and "cannot read the certificate from" in err
    short_key = tmp_path / "short.key"
    short_key.write_text("0102")
    code, _, err = ctl(capsys, term, "bank-a-teller", "smartcard", "generate-key", *r0,
                       "--slot", "9c", "--management-key-file", str(short_key))
    assert code == 2 and "24 bytes (48 hex digits)" in err

    code, _, err = ctl(capsys, term, "bank-a-teller", "smartcard", "sign", *r0, "--slot", "9a",
                       "--pin-stdin", stdin="123456\n", monkeypatch=monkeypatch)
    assert code == 2 and "standard input cannot carry both the message and the PIN" in err
    message = tmp_path / "m"
    message.write_bytes(b"x")
    code, _, err = ctl(capsys, term, "bank-a-teller", "smartcard", "sign", *r0, "--slot", "9c",
                       "--input", str(message), "--pin-stdin", stdin="123456\n",
                       monkeypatch=monkeypatch)
    assert code == 2 and "no certificate in slot 9C signature" in err and "--algorithm" in err
    with pytest.raises(SystemExit):
        ctl(capsys, term, "bank-a-teller", "smartcard", "sign", *r0, "--slot", "9b")
    assert "slot is authentication (9a)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ctl(capsys, term, "bank-a-teller", "smartcard", "verify-pin", *r0, "--pin", "123456")
    assert "--pin VALUE is refused" in capsys.readouterr().err

    # nothing above touched the card's PIN counter
    code, out, _ = ctl(capsys, term, "bank-a-teller", "smartcard", "status", *r0)
    assert "PIN: 3 attempt(s) left" in out and "no certificates" in out


def test_no_card_in_any_reader(capsys: Any, server: Any, tmp_path: Path,
                               running_pcscd: Pcscd) -> None:
    term = branch_terminal(server, tmp_path, cards_in=0)
    code, _, err = ctl(capsys, term, "bank-a-teller", "smartcard", "verify-pin")
    assert code == 2 and err == "authctl: no card in any reader\n"


def test_teller_registers_the_card_with_its_signing_key(
        capsys: Any, server: Any, tmp_path: Path, card: VirtualCardSlot) -> None:
    """``smartcard register --key-slot``: the key of the slot's certificate is recorded with
    the registration at the center, shown by its fingerprint."""
    import hashlib

    term = branch_terminal(server, tmp_path)
    public_pem, cert_pem, pin_file = (tmp_path / "sig-pub.pem", tmp_path / "sig.pem",
                                      tmp_path / "pin")
    pin_file.write_text("123456\n")
    code, _, err = ctl(capsys, term, "bank-a-teller", "smartcard", "register", "--customer",
                       "A-77", "--operator", "kim", "--key-slot", "signature", "--pin-file",
                       str(pin_file))
    assert code == 1 and "holds no certificate" in err
    assert ctl(capsys, term, "bank-a-teller", "smartcard", "generate-key", "--slot", "9c",
               "--out", str(public_pem))[0] == 0
    public_key = serialization.load_pem_public_key(public_pem.read_bytes())
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    cert_pem.write_bytes(CardIssuer().issue(public_key, "Hong Gildong").public_bytes(
        serialization.Encoding.PEM))
    assert ctl(capsys, term, "bank-a-teller", "smartcard", "import-cert", str(cert_pem),
               "--slot", "9c")[0] == 0
    code, out, err = ctl(capsys, term, "bank-a-teller", "smartcard", "register", "--customer",
                         "A-77", "--operator", "kim", "--key-slot", "9c", "--pin-file",
                         str(pin_file))
    assert code == 0, err
    spki = public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    fingerprint = hashlib.sha256(spki).hexdigest()[:32]
    assert f"signing key sha256:{fingerprint}" in out and "for customer A-77" in out
    code, out, _ = ctl(capsys, term, "bank-a-backend", "customer", "registrations",
                       "--customer", "A-77")
    assert code == 0 and f"signing key sha256:{fingerprint}" in out
