"""The PIV session against the virtual card in-process (the driver seam, no pcscd)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from devices.errors import BadRequest, NoSuchObject
from devices.smartcard.apdu import ApduFormat
from devices.smartcard.errors import (
    ApduError,
    InvalidPinError,
    PinBlockedError,
    SecurityStatusError,
)
from devices.smartcard.piv import (
    DEFAULT_MANAGEMENT_KEY,
    KeyType,
    ManagementKeyType,
    PivSession,
    Slot,
    pkcs1v15_block,
    verify_signature,
)
from simulators.smartcard import CardState, PivCard, load_card
from simulators.smartcard.direct import DirectConnection
from simulators.smartcard.issuer import CardIssuer


@pytest.fixture
def card(tmp_path: Path) -> PivCard:
    return load_card(tmp_path / "card.json")


@pytest.fixture
def piv(card: PivCard) -> PivSession:
    return PivSession(DirectConnection(card))


def test_chuid_and_default_pin_state(piv: PivSession, card: PivCard) -> None:
    chuid = piv.read_chuid()
    assert (
        len(chuid.fascn) == 25
        and chuid.guid.endswith(bytes.fromhex(card.state.serial))
        and chuid.expiry
    )
    status = piv.pin_status()
    assert (status.verified, status.attempts_remaining, status.blocked) == (False, 3, False)


def test_wrong_pin_counts_down_then_blocks_then_puk_unblocks(piv: PivSession) -> None:
    for left in (2, 1):
        with pytest.raises(InvalidPinError) as info:
            piv.verify_pin("000000")
        assert info.value.attempts_remaining == left and "attempt" in str(info.value)
    with pytest.raises(InvalidPinError) as info:
        piv.verify_pin("000000")
    assert info.value.attempts_remaining == 0
    with pytest.raises(PinBlockedError):
        piv.verify_pin("123456")  # the right PIN no longer helps
    assert piv.pin_status().blocked
    with pytest.raises(InvalidPinError) as info:
        piv.unblock_pin("00000000", "654321")
    assert info.value.attempts_remaining == 2 and info.value.what == "PUK"
    piv.unblock_pin("12345678", "654321")
    piv.verify_pin("654321")
    assert piv.pin_status().verified


def test_success_resets_the_pin_counter(piv: PivSession) -> None:
    with pytest.raises(InvalidPinError):
        piv.verify_pin("000000")
    piv.verify_pin("123456")
    piv.select()  # drops the verified state
    assert piv.pin_status().attempts_remaining == 3


def test_change_pin_and_puk(piv: PivSession) -> None:
    with pytest.raises(InvalidPinError):
        piv.change_pin("999999", "11112222")
    piv.change_pin("123456", "11112222")
    piv.verify_pin("11112222")
    piv.change_puk("12345678", "87654321")
    with pytest.raises(InvalidPinError):
        piv.unblock_pin("12345678", "123456")


@pytest.mark.parametrize("pin", ["12345", "123456789", "", "12 34\n56"])
def test_pin_format_checked_before_the_card(piv: PivSession, pin: str) -> None:
    with pytest.raises(BadRequest):
        piv.verify_pin(pin)
    assert piv.pin_status().attempts_remaining == 3


def test_puk_blocks(piv: PivSession) -> None:
    for _ in range(3):
        with pytest.raises(InvalidPinError):
            piv.unblock_pin("00000000", "123456")
    with pytest.raises(PinBlockedError) as info:
        piv.unblock_pin("12345678", "123456")
    assert info.value.what == "PUK" and "blocked" in str(info.value)


def test_management_key_required_and_checked(piv: PivSession) -> None:
    with pytest.raises(SecurityStatusError):
        piv.generate_key(Slot.AUTHENTICATION, KeyType.ECCP256)
    with pytest.raises(SecurityStatusError):
        piv.authenticate(bytes(24))
    with pytest.raises(BadRequest):
        piv.authenticate(b"short")
    piv.authenticate(DEFAULT_MANAGEMENT_KEY, ManagementKeyType.TDES)
    piv.generate_key(Slot.AUTHENTICATION, KeyType.ECCP256)


def test_aes_management_key(tmp_path: Path) -> None:
    state = CardState.new()
    state.management_algorithm = ManagementKeyType.AES128
    state.management_key_hex = "00112233445566778899aabbccddeeff"
    piv = PivSession(DirectConnection(PivCard(state)))
    piv.authenticate(bytes.fromhex(state.management_key_hex), ManagementKeyType.AES128)
    piv.put_object(0x5FC109, b"\x01\x02")  # printed information: writable after authentication
    assert piv.get_object(0x5FC109) == b"\x01\x02"


@pytest.mark.parametrize(
    ("key_type", "slot"),
    [(KeyType.ECCP256, Slot.AUTHENTICATION), (KeyType.RSA2048, Slot.SIGNATURE)],
)
def test_generate_certify_sign_verify(piv: PivSession, key_type: KeyType, slot: Slot) -> None:
    piv.authenticate()
    public_key = piv.generate_key(slot, key_type)
    assert isinstance(
        public_key, rsa.RSAPublicKey if key_type.is_rsa else ec.EllipticCurvePublicKey
    )
    certificate = CardIssuer().issue(public_key, "Hong Gildong")
    piv.put_certificate(slot, certificate)
    assert piv.get_certificate(slot) == certificate
    with pytest.raises(SecurityStatusError):
        piv.sign(slot, key_type, b"transfer 1,000,000 KRW")
    piv.verify_pin("123456")
    signature = piv.sign(slot, key_type, b"transfer 1,000,000 KRW")
    assert verify_signature(public_key, signature, b"transfer 1,000,000 KRW")
    assert not verify_signature(public_key, signature, b"transfer 9,000,000 KRW")


def test_state_persists_across_power_cycles_and_reload(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    card = load_card(path)
    piv = PivSession(DirectConnection(card))
    piv.authenticate()
    public_key = piv.generate_key(Slot.SIGNATURE, KeyType.ECCP256)
    with pytest.raises(InvalidPinError):
        piv.verify_pin("000000")
    reloaded = PivSession(DirectConnection(load_card(path)))
    assert reloaded.pin_status().attempts_remaining == 2
    reloaded.verify_pin("123456")
    assert verify_signature(public_key, reloaded.sign(Slot.SIGNATURE, KeyType.ECCP256, b"m"), b"m")
    assert "pkcs8" not in repr(card.state) and card.state.pin not in repr(card.state)


def test_missing_objects_are_not_found(piv: PivSession) -> None:
    with pytest.raises(NoSuchObject, match="no certificate in slot 9A"):
        piv.get_certificate(Slot.AUTHENTICATION)
    piv.verify_pin("123456")
    with pytest.raises(ApduError) as info:
        piv.sign(Slot.AUTHENTICATION, KeyType.ECCP256, b"m")
    assert info.value.sw == 0x6A82


def test_wrong_algorithm_for_slot(piv: PivSession) -> None:
    piv.authenticate()
    piv.generate_key(Slot.AUTHENTICATION, KeyType.ECCP256)
    piv.verify_pin("123456")
    with pytest.raises(ApduError) as info:
        piv.sign(Slot.AUTHENTICATION, KeyType.RSA2048, b"m")
    assert info.value.sw == 0x6A86


def test_extended_length_format(card: PivCard) -> None:
    connection = DirectConnection(card)
    piv = PivSession(connection, ApduFormat.EXTENDED)
    piv.authenticate()
    public_key = piv.generate_key(Slot.SIGNATURE, KeyType.RSA2048)
    piv.verify_pin("123456")
    before = len(connection.sent)
    signature = piv.sign(Slot.SIGNATURE, KeyType.RSA2048, b"m")
    assert len(connection.sent) - before == 1  # no chaining, no GET RESPONSE
    assert verify_signature(public_key, signature, b"m")


def test_pkcs1_block() -> None:
    block = pkcs1v15_block(b"\x00" * 32, "sha256", 256)
    assert (
        len(block) == 256
        and block.startswith(b"\x00\x01\xff")
        and block[-51:-32].hex().startswith("3031")
    )
    with pytest.raises(BadRequest):
        pkcs1v15_block(b"\x00" * 20, "sha1", 256)


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("00", 0x6700),  # too short
        ("00cb3fff05", 0x6A80),  # case 2 GET DATA without tag list
        ("00cb3fff055c03", 0x6700),  # Lc larger than the data
        ("00cb3fff025c035fc1", 0x6700),  # Lc shorter than the data + Le
        ("00cb3fff00", 0x6A80),
        ("a0cb3fff035c017e00", 0x6E00),  # unknown class
        ("00ee000000", 0x6D00),  # unknown instruction
        ("00cb0000035c017e00", 0x6A86),  # wrong P1/P2
        ("00200080053132333435", 0x6A80),  # PIN block of the wrong size
        ("0087119a037c0281", 0x6A80),  # GENERAL AUTHENTICATE with a broken template
        ("008711 9a 03 7c 05 82".replace(" ", ""), 0x6A80),  # truncated TLV
        ("00db3fff055c035fc10500", 0x6982),  # PUT DATA before management key
        ("0047009a057c0380011100", 0x6982),
    ],
)
def test_malformed_apdus_get_status_words(card: PivCard, apdu: str, sw: int) -> None:
    response = card.process(bytes.fromhex(apdu))
    assert response[-2:] == sw.to_bytes(2, "big")
    assert card.process(bytes.fromhex("00cb3fff055c035fc10200"))[-2:] in (b"\x90\x00", b"\x61\x00")
