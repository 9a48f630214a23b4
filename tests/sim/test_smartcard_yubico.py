"""Yubico's tools drive the virtual PIV card through pcscd: yubikit's own `PivSession` over
ykman's PC/SC connection, and yubico-piv-tool (libykpiv)."""
# ruff: noqa: F811  (pytest fixtures imported from tests.pcsc_env are used as arguments)

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from ykman.pcsc import list_devices
from yubikit.core.smartcard import SmartCardConnection
from yubikit.piv import (
    DEFAULT_MANAGEMENT_KEY,
    KEY_TYPE,
    MANAGEMENT_KEY_TYPE,
    PIN_POLICY,
    SLOT,
    TOUCH_POLICY,
    InvalidPinError,
    PivSession,
)

from simulators.smartcard import VirtualCardSlot
from simulators.smartcard.issuer import CardIssuer
from simulators.smartcard.yubico import serial_number
from tests.pcsc_env import (  # noqa: F401  (fixtures)
    READERS,
    card,
    card_factory,
    pcscd,
    require_tool,
    running_pcscd,
)

MESSAGE = b"transfer 3,000,000 KRW to 110-123-456789"
Sessions = Callable[[], AbstractContextManager[PivSession]]


@pytest.fixture
def yubikit(card: VirtualCardSlot) -> Sessions:
    """`with yubikit() as piv:` a yubikit PivSession on reader 0, as ykman opens it."""

    @contextmanager
    def session() -> Iterator[PivSession]:
        devices = [d for d in list_devices("Virtual PCD") if d.reader.name == READERS[0]]
        assert devices, "ykman does not list the virtual reader"
        with devices[0].open_connection(SmartCardConnection) as connection:
            yield PivSession(connection)

    return session


def test_yubikit_session_reads_version_serial_and_metadata(card: VirtualCardSlot,
                                                           yubikit: Sessions) -> None:
    with yubikit() as piv:
        assert tuple(piv.version) == (5, 4, 3)
        assert piv.get_serial() == serial_number(card.card.serial_bytes)
        assert piv.management_key_type == MANAGEMENT_KEY_TYPE.TDES
        pin = piv.get_pin_metadata()
        assert (pin.default_value, pin.total_attempts, pin.attempts_remaining) == (True, 3, 3)
        assert piv.get_puk_metadata().default_value
        assert piv.get_management_key_metadata().default_value
        assert piv.get_pin_attempts() == 3


def test_yubikit_generates_certifies_and_signs(yubikit: Sessions) -> None:
    issuer = CardIssuer()
    with yubikit() as piv:
        piv.authenticate(DEFAULT_MANAGEMENT_KEY)
        ec_public = piv.generate_key(SLOT.AUTHENTICATION, KEY_TYPE.ECCP256,
                                     PIN_POLICY.ONCE, TOUCH_POLICY.NEVER)
        rsa_public = piv.generate_key(SLOT.SIGNATURE, KEY_TYPE.RSA2048)
        assert isinstance(ec_public, ec.EllipticCurvePublicKey)
        assert isinstance(rsa_public, rsa.RSAPublicKey)
        meta = piv.get_slot_metadata(SLOT.AUTHENTICATION)
        assert meta.key_type == KEY_TYPE.ECCP256 and meta.generated
        assert meta.pin_policy == PIN_POLICY.ONCE and meta.touch_policy == TOUCH_POLICY.NEVER
        assert meta.public_key == ec_public
        certificate = issuer.issue(ec_public, "yubikit holder")
        piv.put_certificate(SLOT.AUTHENTICATION, certificate)

    with yubikit() as piv:  # a new session: the certificate is on the card
        assert piv.get_certificate(SLOT.AUTHENTICATION) == certificate
        piv.verify_pin("123456")
        for algorithm in (hashes.SHA256(), hashes.SHA1(), hashes.SHA512()):
            signature = piv.sign(SLOT.AUTHENTICATION, KEY_TYPE.ECCP256, MESSAGE, algorithm)
            ec_public.verify(signature, MESSAGE, ec.ECDSA(algorithm))
        signature = piv.sign(SLOT.SIGNATURE, KEY_TYPE.RSA2048, MESSAGE, hashes.SHA256(),
                             padding.PKCS1v15())
        rsa_public.verify(signature, MESSAGE, padding.PKCS1v15(), hashes.SHA256())


def test_yubikit_wrong_pin_then_reset(yubikit: Sessions) -> None:
    with yubikit() as piv:
        with pytest.raises(InvalidPinError) as info:
            piv.verify_pin("000000")
        assert info.value.attempts_remaining == 2
        assert piv.get_pin_metadata().attempts_remaining == 2
        piv.authenticate(DEFAULT_MANAGEMENT_KEY)
        piv.generate_key(SLOT.AUTHENTICATION, KEY_TYPE.ECCP256)
        piv.reset()  # yubikit blocks PIN and PUK, then sends RESET
        pin = piv.get_pin_metadata()
        assert (pin.default_value, pin.attempts_remaining) == (True, 3)
        with pytest.raises(Exception, match=r"6A88|REFERENCE|reference"):
            piv.get_slot_metadata(SLOT.AUTHENTICATION)
        piv.verify_pin("123456")


def test_yubikit_sets_an_aes_management_key(yubikit: Sessions) -> None:
    new_key = bytes(range(16))
    with yubikit() as piv:
        piv.authenticate(DEFAULT_MANAGEMENT_KEY)
        piv.set_management_key(MANAGEMENT_KEY_TYPE.AES128, new_key)
    with yubikit() as piv:
        assert piv.management_key_type == MANAGEMENT_KEY_TYPE.AES128
        assert not piv.get_management_key_metadata().default_value
        piv.authenticate(new_key)
        piv.generate_key(SLOT.CARD_AUTH, KEY_TYPE.ECCP384)


# -- yubico-piv-tool -----------------------------------------------------------------------


def piv_tool(*args: str, check: bool = True) -> str:
    tool = require_tool("yubico-piv-tool", "yubico-piv-tool")
    done = subprocess.run([tool, "--reader", READERS[0], *args], capture_output=True,
                          text=True, timeout=60)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_yubico_piv_tool_status_generate_and_sign(card: VirtualCardSlot,
                                                  tmp_path: Path) -> None:
    status = piv_tool("--action", "status")
    serial = serial_number(card.card.serial_bytes)
    assert "Version:\t5.4.3" in status and f"Serial Number:\t{serial}" in status
    assert "PIN tries left:\t3" in status

    public_pem = tmp_path / "public.pem"
    piv_tool("--action", "generate", "--slot", "9d", "--algorithm", "ECCP256",
             "--output", str(public_pem))
    public = serialization.load_pem_public_key(public_pem.read_bytes())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    data = tmp_path / "data"
    data.write_bytes(MESSAGE)
    for name, algorithm in (("SHA256", hashes.SHA256()), ("SHA1", hashes.SHA1())):
        signature = tmp_path / f"{name}.sig"
        out = piv_tool("--action", "verify-pin", "--pin", "123456", "--sign", "--slot", "9d",
                       "--algorithm", "ECCP256", "--hash", name, "--input", str(data),
                       "--output", str(signature))
        assert "Signature successful" in out
        public.verify(signature.read_bytes(), MESSAGE, ec.ECDSA(algorithm))

    certificate = CardIssuer().issue(public, "piv-tool holder")
    cert_pem = tmp_path / "cert.pem"
    cert_pem.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    piv_tool("--action", "import-certificate", "--slot", "9d", "--input", str(cert_pem))
    assert "CN=piv-tool holder" in piv_tool("--action", "status")


def test_yubico_piv_tool_wrong_pin_counts(card: VirtualCardSlot) -> None:
    out = piv_tool("--action", "verify-pin", "--pin", "000000", check=False)
    assert "2 tries left" in out
    assert card.card.state.pin_retries_left == 2
    assert "PIN tries left:\t2" in piv_tool("--action", "status")


def test_yubico_piv_tool_changes_the_management_key(card: VirtualCardSlot) -> None:
    new_key = "0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a09080"
    out = piv_tool("--action", "set-mgm-key", "--new-key", new_key)
    assert "Successfully set new management key" in out
    assert card.card.state.management_key_hex == new_key
    out = piv_tool("--action", "generate", "--slot", "9a", f"--key={new_key}", check=False)
    assert "Successfully generated a new private key" in out
    refused = piv_tool("--action", "generate", "--slot", "9a", check=False)  # default key
    assert "Failed authentication" in refused
