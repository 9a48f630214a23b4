"""Independent tools accept the virtual PIV card: OpenSC's tools and its PKCS#11 module."""
# ruff: noqa: F811  (pytest fixtures imported from tests.pcsc_env are used as arguments)

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from devices.smartcard.piv import KeyType, PivSession, Slot
from drivers.pcsc.connection import PcscConnection
from simulators.smartcard import VirtualCardSlot
from simulators.smartcard.issuer import CardIssuer
from tests.pcsc_env import (  # noqa: F401  (fixtures)
    READERS,
    card,
    card_factory,
    opensc_module,
    pcscd,
    require_opensc,
    running_pcscd,
)


@pytest.fixture(autouse=True)
def _opensc() -> None:
    require_opensc()


MESSAGE = b"transfer 3,000,000 KRW to 110-123-456789"


def run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.fixture
def provisioned(
    card: VirtualCardSlot,
) -> tuple[VirtualCardSlot, x509.Certificate, x509.Certificate]:
    """The card with an EC key + certificate in 9A and an RSA key + certificate in 9C."""
    issuer = CardIssuer()
    with PcscConnection(READERS[0]) as connection:
        piv = PivSession(connection)
        piv.authenticate()
        ec_cert = issuer.issue(piv.generate_key(Slot.AUTHENTICATION, KeyType.ECCP256), "EC holder")
        piv.put_certificate(Slot.AUTHENTICATION, ec_cert)
        rsa_cert = issuer.issue(piv.generate_key(Slot.SIGNATURE, KeyType.RSA2048), "RSA holder")
        piv.put_certificate(Slot.SIGNATURE, rsa_cert)
    return card, ec_cert, rsa_cert


def test_opensc_tool_sees_a_piv_card(card: VirtualCardSlot) -> None:
    listing = run("opensc-tool", "-l")
    assert "Virtual PCD 00 00" in listing
    assert "Personal Identity Verification Card" in run("opensc-tool", "-r", "0", "-n")
    atr = run("opensc-tool", "-r", "0", "-a")
    assert card.card.atr.hex(":") in atr


def test_pkcs11_tool_lists_logs_in_and_signs(provisioned: tuple, tmp_path: Path) -> None:
    _card, ec_cert, rsa_cert = provisioned
    module = opensc_module()
    assert module
    base = ("pkcs11-tool", "--module", module, "--slot-index", "0")
    objects = run(*base, "--list-objects")
    assert "CN=EC holder" in objects and "CN=RSA holder" in objects
    private = run(*base, "--login", "--pin", "123456", "--list-objects", "--type", "privkey")
    assert "Private Key Object; EC" in private and "Private Key Object; RSA" in private

    message = tmp_path / "message"
    message.write_bytes(MESSAGE)
    digest_file = tmp_path / "digest"
    h = hashes.Hash(hashes.SHA256())
    h.update(MESSAGE)
    digest_file.write_bytes(h.finalize())

    ec_sig = tmp_path / "ec.sig"
    run(
        *base,
        "--login",
        "--pin",
        "123456",
        "--sign",
        "-m",
        "ECDSA",
        "--id",
        "01",
        "-i",
        str(digest_file),
        "-o",
        str(ec_sig),
    )
    raw = ec_sig.read_bytes()
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    ec_key = ec_cert.public_key()
    assert isinstance(ec_key, ec.EllipticCurvePublicKey)
    ec_key.verify(der, MESSAGE, ec.ECDSA(hashes.SHA256()))

    rsa_sig = tmp_path / "rsa.sig"
    run(
        *base,
        "--login",
        "--pin",
        "123456",
        "--sign",
        "-m",
        "SHA256-RSA-PKCS",
        "--id",
        "02",
        "-i",
        str(message),
        "-o",
        str(rsa_sig),
    )
    rsa_key = rsa_cert.public_key()
    assert isinstance(rsa_key, rsa.RSAPublicKey)
    rsa_key.verify(rsa_sig.read_bytes(), MESSAGE, padding.PKCS1v15(), hashes.SHA256())


def test_pkcs11_tool_self_test_passes(provisioned: tuple, tmp_path: Path) -> None:
    """`pkcs11-tool --test`: random numbers (GENERAL AUTHENTICATE with algorithm 00 on the
    management key), digests, RSA signatures, verification and decryption."""
    module = require_opensc()
    base = ("pkcs11-tool", "--module", module, "--slot-index", "0")
    out = run(*base, "--login", "--pin", "123456", "--test")
    assert "ERR" not in out and "No errors" in out, out
    first, second = tmp_path / "random1", tmp_path / "random2"
    run(*base, "--generate-random", "64", "-o", str(first))
    run(*base, "--generate-random", "64", "-o", str(second))
    assert len(first.read_bytes()) == len(second.read_bytes()) == 64
    assert first.read_bytes() != second.read_bytes()


def test_pkcs11_tool_ecdsa_sha1_on_p256(provisioned: tuple, tmp_path: Path) -> None:
    """OpenSC hands the card a 20-byte SHA-1 digest for a P-256 key; the card signs it."""
    _card, ec_cert, _rsa_cert = provisioned
    module = require_opensc()
    message = tmp_path / "message"
    message.write_bytes(MESSAGE)
    signature = tmp_path / "ec.sig"
    run("pkcs11-tool", "--module", module, "--slot-index", "0", "--login", "--pin", "123456",
        "--sign", "-m", "ECDSA-SHA1", "--id", "01", "-i", str(message), "-o", str(signature))
    raw = signature.read_bytes()
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key = ec_cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(der, MESSAGE, ec.ECDSA(hashes.SHA1()))


def test_pkcs11_tool_wrong_pin(provisioned: tuple) -> None:
    module = opensc_module()
    assert module
    done = subprocess.run(
        [
            "pkcs11-tool",
            "--module",
            module,
            "--slot-index",
            "0",
            "--login",
            "--pin",
            "999999",
            "--list-objects",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "CKR_PIN_INCORRECT" in done.stdout + done.stderr
    with PcscConnection(READERS[0]) as connection:
        assert PivSession(connection).pin_status().attempts_remaining == 2


PYTHON_PKCS11 = textwrap.dedent(
    """
    import sys, pkcs11
    from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
    lib = pkcs11.lib(sys.argv[1])
    token = next(slot.get_token() for slot in lib.get_slots(token_present=True))
    with token.open(user_pin="123456") as session:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC)
        cert = next(session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE,
                                         Attribute.ID: key.id}))
        signature = key.sign(bytes.fromhex(sys.argv[2]), mechanism=Mechanism.ECDSA)
        print("|".join([key.label, cert[Attribute.VALUE].hex(), signature.hex()]))
    """
)


def test_python_pkcs11_over_opensc(provisioned: tuple) -> None:
    """python-pkcs11 (what authd's token API uses) sees and uses the card through OpenSC."""
    _card, ec_cert, _rsa_cert = provisioned
    h = hashes.Hash(hashes.SHA256())
    h.update(MESSAGE)
    digest = h.finalize()
    out = run(sys.executable, "-c", PYTHON_PKCS11, str(opensc_module()), digest.hex())
    label, cert_hex, sig_hex = out.strip().splitlines()[-1].split("|")
    assert label == "PIV AUTH key"
    assert x509.load_der_x509_certificate(bytes.fromhex(cert_hex)) == ec_cert
    raw = bytes.fromhex(sig_hex)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key = ec_cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(der, MESSAGE, ec.ECDSA(hashes.SHA256()))
