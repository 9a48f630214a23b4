"""The virtual card's answers to what third-party tools send: SP 800-78-4 algorithm 00, short
and long ECDSA digests, and Yubico's PIV extensions (raw APDUs, no pcscd)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from devices.smartcard.piv import (
    DEFAULT_MANAGEMENT_KEY,
    KeyType,
    ManagementKeyType,
    PivSession,
    Slot,
)
from devices.smartcard.tlv import parse_dict, tlv, unwrap
from simulators.smartcard import PivCard, load_card
from simulators.smartcard.direct import DirectConnection


@pytest.fixture
def card(tmp_path: Path) -> PivCard:
    return load_card(tmp_path / "card.json")


@pytest.fixture
def link(card: PivCard) -> DirectConnection:
    return DirectConnection(card)


def apdu(ins: int, p1: int = 0, p2: int = 0, data: bytes = b"") -> bytes:
    return bytes([0x00, ins, p1, p2]) + (bytes([len(data)]) + data if data else b"") + b"\x00"


def send(link: DirectConnection, ins: int, p1: int = 0, p2: int = 0,
         data: bytes = b"") -> tuple[bytes, int]:
    """One command, its 61xx continuation collected with GET RESPONSE."""
    answer, sw = link.send_and_receive(apdu(ins, p1, p2, data))
    while sw >> 8 == 0x61:
        more, sw = link.send_and_receive(bytes([0x00, 0xC0, 0x00, 0x00, sw & 0xFF]))
        answer += more
    return answer, sw


def tdes(key: bytes) -> Cipher[modes.ECB]:
    return Cipher(TripleDES(key), modes.ECB())


# -- algorithm reference 00 (3-key TDEA, SP 800-78-4 table 5) ------------------------------


def test_card_challenge_with_algorithm_00(link: DirectConnection) -> None:
    """OpenSC's GENERATE RANDOM: GENERAL AUTHENTICATE 00 87 00 9B {7C {81 (empty)}}."""
    first, sw = send(link, 0x87, 0x00, 0x9B, bytes.fromhex("7c028100"))
    second, sw2 = send(link, 0x87, 0x00, 0x9B, bytes.fromhex("7c028100"))
    assert (sw, sw2) == (0x9000, 0x9000)
    challenges = [parse_dict(unwrap(r, 0x7C))[0x81] for r in (first, second)]
    assert all(len(c) == 8 for c in challenges) and challenges[0] != challenges[1]


def test_mutual_authentication_with_algorithm_00(link: DirectConnection) -> None:
    response, sw = send(link, 0x87, 0x00, 0x9B, tlv(0x7C, tlv(0x80)))
    assert sw == 0x9000
    decryptor = tdes(DEFAULT_MANAGEMENT_KEY).decryptor()
    witness = decryptor.update(parse_dict(unwrap(response, 0x7C))[0x80]) + decryptor.finalize()
    challenge = os.urandom(8)
    answer, sw = send(link, 0x87, 0x00, 0x9B,
                      tlv(0x7C, tlv(0x80, witness) + tlv(0x81, challenge)))
    assert sw == 0x9000
    encryptor = tdes(DEFAULT_MANAGEMENT_KEY).encryptor()
    assert parse_dict(unwrap(answer, 0x7C))[0x82] == encryptor.update(challenge)
    # authenticated: PUT DATA is allowed
    assert send(link, 0xDB, 0x3F, 0xFF, bytes.fromhex("5c035fc1055302aabb"))[1] == 0x9000


def test_algorithm_00_is_not_an_aes_key(card: PivCard, link: DirectConnection) -> None:
    card.state.management_algorithm = 0x08
    card.state.management_key_hex = "00" * 16
    assert send(link, 0x87, 0x00, 0x9B, bytes.fromhex("7c028100"))[1] == 0x6A86
    assert send(link, 0x87, 0x08, 0x9B, bytes.fromhex("7c028100"))[1] == 0x9000


# -- ECDSA over digests of any common length (FIPS 186-4, 6.4) -----------------------------


@pytest.mark.parametrize("key_type", [KeyType.ECCP256, KeyType.ECCP384])
@pytest.mark.parametrize("hash_name", ["sha1", "sha224", "sha256", "sha384", "sha512"])
def test_ecdsa_signs_short_and_long_digests(link: DirectConnection, key_type: KeyType,
                                            hash_name: str) -> None:
    piv = PivSession(link)
    piv.authenticate()
    public = piv.generate_key(Slot.AUTHENTICATION, key_type)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    piv.verify_pin("123456")
    message = b"login challenge"
    value = hashlib.new(hash_name, message).digest()
    response, sw = send(link, 0x87, key_type, Slot.AUTHENTICATION,
                        tlv(0x7C, tlv(0x82) + tlv(0x81, value)))
    assert sw == 0x9000
    signature = parse_dict(unwrap(response, 0x7C))[0x82]
    algorithm = getattr(hashes, hash_name.upper())()
    public.verify(signature, value, ec.ECDSA(Prehashed(algorithm)))
    public.verify(signature, message, ec.ECDSA(algorithm))


@pytest.mark.parametrize("size", [0, 65])
def test_ecdsa_refuses_empty_and_oversized_input(link: DirectConnection, size: int) -> None:
    piv = PivSession(link)
    piv.authenticate()
    piv.generate_key(Slot.AUTHENTICATION, KeyType.ECCP256)
    piv.verify_pin("123456")
    _data, sw = link.send_and_receive(
        bytes([0x00, 0x87, KeyType.ECCP256, Slot.AUTHENTICATION])
        + _lc(tlv(0x7C, tlv(0x82) + tlv(0x81, b"\x01" * size)))
    )
    assert sw == 0x6A80


def _lc(data: bytes) -> bytes:
    return bytes([len(data)]) + data


# -- Yubico PIV extensions ------------------------------------------------------------------


def test_version_and_serial(card: PivCard, link: DirectConnection) -> None:
    assert send(link, 0xFD) == (bytes([5, 4, 3]), 0x9000)
    serial, sw = send(link, 0xF8)
    assert sw == 0x9000 and len(serial) == 4 and serial[0] < 0x80  # a positive int32
    guid_tail = PivSession(link).read_chuid().guid[-4:]
    assert serial == bytes([guid_tail[0] & 0x7F]) + guid_tail[1:]


def test_pin_and_puk_metadata(link: DirectConnection) -> None:
    piv = PivSession(link)
    assert _metadata(link, 0x80)[0x06] == bytes([3, 3])
    assert _metadata(link, 0x80)[0x05] == b"\x01"
    with pytest.raises(Exception, match="attempt"):
        piv.verify_pin("000000")
    assert _metadata(link, 0x80)[0x06] == bytes([3, 2])
    piv.change_pin("123456", "654321")
    assert _metadata(link, 0x80)[0x05] == b"\x00" and _metadata(link, 0x80)[0x06] == bytes([3, 3])
    assert _metadata(link, 0x81)[0x05] == b"\x01"


def test_management_key_and_slot_metadata(link: DirectConnection) -> None:
    meta = _metadata(link, 0x9B)
    assert meta[0x01] == b"\x03" and meta[0x05] == b"\x01" and meta[0x02][1] == 1
    assert send(link, 0xF7, 0x00, 0x9A)[1] == 0x6A88  # empty slot
    piv = PivSession(link)
    piv.authenticate()
    public = piv.generate_key(Slot.CARD_AUTH, KeyType.ECCP256)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    meta = _metadata(link, 0x9E)
    assert meta[0x01] == bytes([KeyType.ECCP256]) and meta[0x03] == b"\x01"
    assert meta[0x02] == bytes([1, 1])  # PIN never (9E), touch never
    point = parse_dict(meta[0x04])[0x86]
    assert ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point) == public
    piv.generate_key(Slot.SIGNATURE, KeyType.RSA2048)
    meta = _metadata(link, 0x9C)
    assert meta[0x02] == bytes([2, 1]) and len(parse_dict(meta[0x04])[0x81]) == 256


def test_generation_refuses_a_policy_the_slot_does_not_have(link: DirectConnection) -> None:
    piv = PivSession(link)
    piv.authenticate()
    always = tlv(0xAC, tlv(0x80, bytes([KeyType.ECCP256])) + tlv(0xAA, b"\x03"))
    assert send(link, 0x47, 0x00, 0x9A, always)[1] == 0x6A80
    touch = tlv(0xAC, tlv(0x80, bytes([KeyType.ECCP256])) + tlv(0xAB, b"\x02"))
    assert send(link, 0x47, 0x00, 0x9A, touch)[1] == 0x6A80
    once = tlv(0xAC, tlv(0x80, bytes([KeyType.ECCP256])) + tlv(0xAA, b"\x02") + tlv(0xAB, b"\x01"))
    assert send(link, 0x47, 0x00, 0x9A, once)[1] == 0x9000


def test_set_management_key(card: PivCard, link: DirectConnection, tmp_path: Path) -> None:
    new_key = os.urandom(32)
    request = bytes([0x0C]) + tlv(0x9B, new_key)
    assert send(link, 0xFF, 0xFF, 0xFF, request)[1] == 0x6982  # not authenticated
    piv = PivSession(link)
    piv.authenticate()
    assert send(link, 0xFF, 0xFF, 0xFE, request)[1] == 0x6A86  # touch: no sensor
    assert send(link, 0xFF, 0xFF, 0xFF, bytes([0x0C]) + tlv(0x9B, new_key[:16]))[1] == 0x6A80
    assert send(link, 0xFF, 0xFF, 0xFF, request)[1] == 0x9000
    meta = _metadata(link, 0x9B)
    assert meta[0x01] == b"\x0c" and meta[0x05] == b"\x00"
    piv.authenticate(new_key, ManagementKeyType.AES256)
    reloaded = load_card(tmp_path / "card.json")  # persisted in the card's state file
    assert reloaded.state.management_algorithm == 0x0C


def test_set_pin_retries(link: DirectConnection) -> None:
    piv = PivSession(link)
    piv.authenticate()
    assert send(link, 0xFA, 5, 4)[1] == 0x6982  # PIN not verified
    piv.verify_pin("123456")
    assert send(link, 0xFA, 0, 4)[1] == 0x6A86
    assert send(link, 0xFA, 5, 4)[1] == 0x9000
    assert _metadata(link, 0x80)[0x06] == bytes([5, 5])
    assert _metadata(link, 0x81)[0x06] == bytes([4, 4])


def test_reset_only_when_pin_and_puk_are_blocked(card: PivCard, link: DirectConnection) -> None:
    piv = PivSession(link)
    piv.authenticate()
    piv.generate_key(Slot.AUTHENTICATION, KeyType.ECCP256)
    assert send(link, 0xFB)[1] == 0x6985
    for _ in range(3):
        send(link, 0x20, 0x00, 0x80, b"0000\xff\xff\xff\xff")
    assert send(link, 0xFB)[1] == 0x6985  # the PUK still works
    for _ in range(3):
        send(link, 0x2C, 0x00, 0x80, b"00000000" + b"111111\xff\xff")
    assert send(link, 0xFB)[1] == 0x9000
    assert not card.state.keys and card.state.pin_retries_left == 3
    piv.verify_pin("123456")
    piv.authenticate()


def _metadata(link: DirectConnection, p2: int) -> dict[int, bytes]:
    data, sw = send(link, 0xF7, 0x00, p2)
    assert sw == 0x9000
    return parse_dict(data)

