"""A PIV card application (NIST SP 800-73-4) answering command APDUs with response APDUs.

Card-side parsing of short and extended APDUs, command chaining (CLA 0x10), response
chaining (61xx + GET RESPONSE), PIN/PUK retry counters, management-key authentication
(3DES or AES, witness/challenge), on-card key generation, GENERAL AUTHENTICATE signing,
and data-object storage. Transient state (PIN verified, selection) is lost on reset.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from simulators.smartcard.state import CardState, KeyRecord
from simulators.smartcard.status import (
    SW_BLOCKED,
    SW_CLA_NOT_SUPPORTED,
    SW_INCORRECT_P1P2,
    SW_INS_NOT_SUPPORTED,
    SW_NOT_FOUND,
    SW_OK,
    SW_REF_NOT_FOUND,
    SW_SECURITY,
    SW_UNKNOWN,
    SW_WRONG_DATA,
    SW_WRONG_LENGTH,
    StatusError,
)
from simulators.smartcard.tlv import as_dict, tlv
from simulators.smartcard.yubico import INSTRUCTIONS as YUBICO_INSTRUCTIONS
from simulators.smartcard.yubico import (
    YubicoExtensions,
    check_generation_policies,
    pin_policy,
)

log = logging.getLogger(__name__)

PIV_AID = bytes.fromhex("A000000308000010000100")
PIV_PIX = PIV_AID[5:]

INS_SELECT = 0xA4
INS_GET_DATA = 0xCB
INS_PUT_DATA = 0xDB
INS_VERIFY = 0x20
INS_CHANGE_REFERENCE = 0x24
INS_RESET_RETRY = 0x2C
INS_GENERATE = 0x47
INS_AUTHENTICATE = 0x87
INS_GET_RESPONSE = 0xC0

KEY_PIN = 0x80
KEY_PUK = 0x81
KEY_MANAGEMENT = 0x9B
SIGNING_SLOTS = (0x9A, 0x9C, 0x9D, 0x9E)
NO_PIN_SLOTS = (0x9E,)

ALG_3DES_LEGACY = 0x00  # SP 800-78-4 table 5: '00' is 3-key TDEA (ECB) as well as '03'
ALG_3DES = 0x03
ALG_AES128 = 0x08
ALG_AES192 = 0x0A
ALG_AES256 = 0x0C
ALG_RSA1024 = 0x06
ALG_RSA2048 = 0x07
ALG_ECCP256 = 0x11
ALG_ECCP384 = 0x14
_SYMMETRIC_KEY_LEN = {ALG_3DES: 24, ALG_AES128: 16, ALG_AES192: 24, ALG_AES256: 32}
_RSA_BITS = {ALG_RSA1024: 1024, ALG_RSA2048: 2048}
_EC_CURVES: dict[int, tuple[ec.EllipticCurve, hashes.HashAlgorithm]] = {
    ALG_ECCP256: (ec.SECP256R1(), hashes.SHA256()),
    ALG_ECCP384: (ec.SECP384R1(), hashes.SHA384()),
}

_MAX_ECDSA_INPUT = 64  # SHA-512

TAG_DISCOVERY = 0x7E
TAG_CHUID = 0x5FC102
TAG_CCC = 0x5FC107
TAG_DYN_AUTH = 0x7C
TAG_WITNESS = 0x80
TAG_CHALLENGE = 0x81
TAG_RESPONSE = 0x82


@dataclass(frozen=True)
class Command:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes
    le: int  # 0: no Le field; otherwise the maximum response length (256 / 65536 for "00")
    extended: bool


def parse_command(apdu: bytes) -> Command:
    """ISO 7816-3/4 case 1-4, short and extended; StatusError(6700) when malformed."""
    if len(apdu) < 4:
        raise StatusError(SW_WRONG_LENGTH)
    cla, ins, p1, p2 = apdu[:4]
    body = apdu[4:]
    if not body:
        return Command(cla, ins, p1, p2, b"", 0, False)
    if len(body) == 1:
        return Command(cla, ins, p1, p2, b"", body[0] or 256, False)
    if body[0] != 0:
        lc = body[0]
        if len(body) == 1 + lc:
            return Command(cla, ins, p1, p2, body[1:], 0, False)
        if len(body) == 2 + lc:
            return Command(cla, ins, p1, p2, body[1 : 1 + lc], body[-1] or 256, False)
        raise StatusError(SW_WRONG_LENGTH)
    if len(body) == 3:
        return Command(cla, ins, p1, p2, b"", int.from_bytes(body[1:3], "big") or 65536, True)
    if len(body) < 3:
        raise StatusError(SW_WRONG_LENGTH)
    lc = int.from_bytes(body[1:3], "big")
    if lc == 0:
        raise StatusError(SW_WRONG_LENGTH)
    if len(body) == 3 + lc:
        return Command(cla, ins, p1, p2, body[3:], 0, True)
    if len(body) == 5 + lc:
        return Command(
            cla, ins, p1, p2, body[3 : 3 + lc], int.from_bytes(body[-2:], "big") or 65536, True
        )
    raise StatusError(SW_WRONG_LENGTH)


def _pin_bytes(value: str) -> bytes:
    return value.encode().ljust(8, b"\xff")


def _valid_pin_block(block: bytes) -> bool:
    """6-8 bytes followed by 0xFF padding (SP 800-73-4 part 2, 2.4.3)."""
    digits = block.rstrip(b"\xff")
    return len(block) == 8 and 6 <= len(digits) <= 8 and b"\xff" not in digits


class PivCard:
    """The card's application logic; `process(apdu) -> response` (data + SW)."""

    def __init__(self, state: CardState, path: Path | None = None) -> None:
        self.state = state
        self._path = path
        self._lock = threading.Lock()
        self.on_command: Callable[[Command], None] | None = None  # test hook (e.g. pull mid-op)
        self._extensions = YubicoExtensions(self)
        self.reset()

    # -- transient state -------------------------------------------------------------------
    def reset(self) -> None:
        self.selected = True  # PIV is the card's default application
        self.pin_verified = False
        self.management_authenticated = False
        self._witness: bytes | None = None
        self._challenge: bytes | None = None
        self._chain: tuple[int, int, int, bytearray] | None = None
        self._pending = b""

    @property
    def atr(self) -> bytes:
        return bytes.fromhex(self.state.atr_hex)

    @property
    def serial_bytes(self) -> bytes:
        return bytes.fromhex(self.state.serial.rjust(16, "0"))[-8:]

    @staticmethod
    def pin_policy(slot: int) -> int:
        return pin_policy(slot, NO_PIN_SLOTS)

    @staticmethod
    def public_key_template(record: KeyRecord) -> bytes:
        """The public key as GENERATE answers it (inside 7F49): 81 n 82 e, or 86 point."""
        private = serialization.load_der_private_key(bytes.fromhex(record.pkcs8_hex), None)
        if isinstance(private, rsa.RSAPrivateKey):
            numbers = private.public_key().public_numbers()
            size = (numbers.n.bit_length() + 7) // 8
            modulus, exponent = numbers.n.to_bytes(size, "big"), numbers.e.to_bytes(3, "big")
            return tlv(0x81, modulus) + tlv(0x82, exponent)
        if isinstance(private, ec.EllipticCurvePrivateKey):
            point = private.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
            return tlv(0x86, point)
        raise StatusError(SW_UNKNOWN)  # pragma: no cover - only RSA and EC keys are generated

    def save(self) -> None:
        if self._path is not None:
            self.state.save(self._path)

    # -- APDU entry point ------------------------------------------------------------------
    def process(self, apdu: bytes) -> bytes:
        with self._lock:
            try:
                command = parse_command(apdu)
                if self.on_command is not None:
                    self.on_command(command)
                data, sw = self._dispatch(command)
            except StatusError as exc:
                self._chain = None
                data, sw = b"", exc.sw
            except Exception:  # an unexpected card fault answers 6F00, it never crashes the card
                log.exception("virtual card fault")
                self._chain = None
                data, sw = b"", SW_UNKNOWN
            return data + sw.to_bytes(2, "big")

    def _dispatch(self, cmd: Command) -> tuple[bytes, int]:
        if cmd.cla & ~0x10 not in (0x00,):
            raise StatusError(SW_CLA_NOT_SUPPORTED)
        if cmd.ins == INS_GET_RESPONSE:
            return self._next_chunk(cmd.le or 256, cmd.extended)
        self._pending = b""
        if cmd.cla & 0x10:
            if self._chain is not None and self._chain[:3] != (cmd.ins, cmd.p1, cmd.p2):
                self._chain = None
            if self._chain is None:
                self._chain = (cmd.ins, cmd.p1, cmd.p2, bytearray())
            self._chain[3].extend(cmd.data)
            if len(self._chain[3]) > 0x10000:
                raise StatusError(SW_WRONG_LENGTH)
            return b"", SW_OK
        data = cmd.data
        if self._chain is not None:
            if self._chain[:3] == (cmd.ins, cmd.p1, cmd.p2):
                data = bytes(self._chain[3]) + data
            self._chain = None
        response = self._execute(cmd, data)
        self._pending = response
        return self._next_chunk(cmd.le or 256, cmd.extended)

    def _next_chunk(self, le: int, extended: bool) -> tuple[bytes, int]:
        size = le if extended else min(le, 256)
        chunk, self._pending = self._pending[:size], self._pending[size:]
        remaining = len(self._pending)
        if remaining:
            return chunk, 0x6100 | (remaining if remaining < 256 else 0)
        return chunk, SW_OK

    def _execute(self, cmd: Command, data: bytes) -> bytes:
        if cmd.ins == INS_SELECT:
            return self._select(cmd, data)
        if not self.selected:
            raise StatusError(SW_INS_NOT_SUPPORTED)
        if cmd.ins in YUBICO_INSTRUCTIONS:
            return self._extensions.execute(cmd, data)
        handler = {
            INS_GET_DATA: self._get_data,
            INS_PUT_DATA: self._put_data,
            INS_VERIFY: self._verify,
            INS_CHANGE_REFERENCE: self._change_reference,
            INS_RESET_RETRY: self._reset_retry,
            INS_GENERATE: self._generate,
            INS_AUTHENTICATE: self._authenticate,
        }.get(cmd.ins)
        if handler is None:
            raise StatusError(SW_INS_NOT_SUPPORTED)
        return handler(cmd, data)

    # -- SELECT ----------------------------------------------------------------------------
    def _select(self, cmd: Command, data: bytes) -> bytes:
        if cmd.p1 != 0x04:
            raise StatusError(SW_NOT_FOUND)
        if len(data) < 5 or not PIV_AID.startswith(data):
            raise StatusError(SW_NOT_FOUND)
        self.selected = True
        self.pin_verified = False
        self.management_authenticated = False
        algorithms_supported = b"".join(
            tlv(0x80, bytes([alg]))
            for alg in (ALG_3DES, ALG_AES128, ALG_RSA2048, ALG_ECCP256, ALG_ECCP384)
        )
        return tlv(
            0x61,
            tlv(0x4F, PIV_PIX)
            + tlv(0x79, tlv(0x4F, PIV_AID[:5]))
            + tlv(0x50, b"authd virtual PIV")
            + tlv(0xAC, algorithms_supported + tlv(0x06, b"")),
        )

    # -- data objects ----------------------------------------------------------------------
    def _object_tag(self, cmd: Command, data: bytes) -> tuple[int, bytes]:
        if (cmd.p1, cmd.p2) != (0x3F, 0xFF):
            raise StatusError(SW_INCORRECT_P1P2)
        try:
            if (
                not data
                or data[0] != 0x5C
                or len(data) < 2
                or data[1] > 3
                or len(data) < 2 + data[1]
            ):
                raise ValueError("tag list")
            tag = int.from_bytes(data[2 : 2 + data[1]], "big")
        except ValueError:
            raise StatusError(SW_WRONG_DATA) from None
        return tag, data[2 + data[1] :]

    def _get_data(self, cmd: Command, data: bytes) -> bytes:
        tag, rest = self._object_tag(cmd, data)
        if rest:
            raise StatusError(SW_WRONG_DATA)
        if tag == TAG_DISCOVERY:
            return tlv(0x7E, tlv(0x4F, PIV_AID) + tlv(0x5F2F, b"\x40\x00"))
        stored = self.state.objects.get(f"{tag:x}")
        if stored is None:
            stored_bytes = self._builtin_object(tag)
            if stored_bytes is None:
                raise StatusError(SW_NOT_FOUND)
            return stored_bytes
        return bytes.fromhex(stored)

    def _builtin_object(self, tag: int) -> bytes | None:
        serial = self.serial_bytes
        if tag == TAG_CHUID:
            fascn = bytes.fromhex("D4E739DA739CED39CE739D836858210842108421C84210C3EB")
            guid = serial.rjust(16, b"\x00")
            body = (
                tlv(0x30, fascn)
                + tlv(0x34, guid)
                + tlv(0x35, b"20351231")
                + tlv(0x3E, b"")
                + tlv(0xFE, b"")
            )
            return tlv(0x53, body)
        if tag == TAG_CCC:
            card_id = bytes.fromhex("a000000116ff02") + serial.rjust(14, b"\x00")
            body = tlv(0xF0, card_id) + tlv(0xF1, b"\x21") + tlv(0xF2, b"\x21") + tlv(0xF3, b"")
            body += tlv(0xF4, b"\x00") + tlv(0xF5, b"\x10") + tlv(0xF6, b"") + tlv(0xF7, b"")
            body += (
                tlv(0xFA, b"") + tlv(0xFB, b"") + tlv(0xFC, b"") + tlv(0xFD, b"") + tlv(0xFE, b"")
            )
            return tlv(0x53, body)
        return None

    def _put_data(self, cmd: Command, data: bytes) -> bytes:
        if not self.management_authenticated:
            raise StatusError(SW_SECURITY)
        tag, rest = self._object_tag(cmd, data)
        if tag == TAG_DISCOVERY or not rest:
            raise StatusError(SW_WRONG_DATA)
        try:
            items = as_dict(rest)
        except ValueError:
            raise StatusError(SW_WRONG_DATA) from None
        if 0x53 not in items or len(items) != 1:
            raise StatusError(SW_WRONG_DATA)
        key = f"{tag:x}"
        if items[0x53]:
            self.state.objects[key] = rest.hex()
        else:
            self.state.objects.pop(key, None)
        self.save()
        return b""

    # -- PIN / PUK -------------------------------------------------------------------------
    def _check_reference(self, which: int, block: bytes) -> None:
        """Compare a PIN or PUK block; counts a failure, raises 63Cx / 6983."""
        state = self.state
        left = state.pin_retries_left if which == KEY_PIN else state.puk_retries_left
        if left <= 0:
            raise StatusError(SW_BLOCKED)
        expected = _pin_bytes(state.pin if which == KEY_PIN else state.puk)
        if len(block) != 8 or not _constant_eq(block, expected):
            left -= 1
            if which == KEY_PIN:
                state.pin_retries_left = left
                self.pin_verified = False
            else:
                state.puk_retries_left = left
            self.save()
            raise StatusError(0x63C0 | left)
        if which == KEY_PIN:
            if state.pin_retries_left != state.pin_retries:
                state.pin_retries_left = state.pin_retries
                self.save()
        elif state.puk_retries_left != state.puk_retries:
            state.puk_retries_left = state.puk_retries
            self.save()

    def _verify(self, cmd: Command, data: bytes) -> bytes:
        if cmd.p2 != KEY_PIN:
            raise StatusError(SW_REF_NOT_FOUND)
        if cmd.p1 == 0xFF:
            if data:
                raise StatusError(SW_WRONG_DATA)
            self.pin_verified = False
            return b""
        if cmd.p1 != 0x00:
            raise StatusError(SW_INCORRECT_P1P2)
        if not data:
            if self.state.pin_retries_left <= 0:
                raise StatusError(SW_BLOCKED)
            if self.pin_verified:
                return b""
            raise StatusError(0x63C0 | self.state.pin_retries_left)
        if len(data) != 8:
            raise StatusError(SW_WRONG_DATA)
        self._check_reference(KEY_PIN, data)
        self.pin_verified = True
        return b""

    def _change_reference(self, cmd: Command, data: bytes) -> bytes:
        if cmd.p2 not in (KEY_PIN, KEY_PUK) or cmd.p1 != 0x00:
            raise StatusError(SW_REF_NOT_FOUND)
        if len(data) != 16:
            raise StatusError(SW_WRONG_DATA)
        self._check_reference(cmd.p2, data[:8])
        new = data[8:]
        if not _valid_pin_block(new):
            raise StatusError(SW_WRONG_DATA)
        value = new.rstrip(b"\xff").decode("latin-1")
        if cmd.p2 == KEY_PIN:
            self.state.pin = value
        else:
            self.state.puk = value
        self.save()
        return b""

    def _reset_retry(self, cmd: Command, data: bytes) -> bytes:
        if cmd.p2 != KEY_PIN or cmd.p1 != 0x00:
            raise StatusError(SW_REF_NOT_FOUND)
        if len(data) != 16:
            raise StatusError(SW_WRONG_DATA)
        self._check_reference(KEY_PUK, data[:8])
        new = data[8:]
        if not _valid_pin_block(new):
            raise StatusError(SW_WRONG_DATA)
        self.state.pin = new.rstrip(b"\xff").decode("latin-1")
        self.state.pin_retries_left = self.state.pin_retries
        self.save()
        return b""

    # -- key generation --------------------------------------------------------------------
    def _generate(self, cmd: Command, data: bytes) -> bytes:
        if not self.management_authenticated:
            raise StatusError(SW_SECURITY)
        if cmd.p1 != 0x00 or cmd.p2 not in SIGNING_SLOTS:
            raise StatusError(SW_INCORRECT_P1P2)
        try:
            template = as_dict(data)
            control = as_dict(template[0xAC])
            algorithm = control[0x80][0]
        except (ValueError, KeyError, IndexError):
            raise StatusError(SW_WRONG_DATA) from None
        check_generation_policies(cmd.p2, control, NO_PIN_SLOTS)
        private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
        if algorithm in _RSA_BITS:
            private = rsa.generate_private_key(65537, _RSA_BITS[algorithm])
        elif algorithm in _EC_CURVES:
            private = ec.generate_private_key(_EC_CURVES[algorithm][0])
        else:
            raise StatusError(SW_WRONG_DATA)
        der = private.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        record = KeyRecord(algorithm=algorithm, pkcs8_hex=der.hex())
        self.state.keys[f"{cmd.p2:02x}"] = record
        self.save()
        return tlv(0x7F49, self.public_key_template(record))

    # -- GENERAL AUTHENTICATE ----------------------------------------------------------------
    def _authenticate(self, cmd: Command, data: bytes) -> bytes:
        try:
            outer = as_dict(data)
            fields = as_dict(outer[TAG_DYN_AUTH])
        except (ValueError, KeyError):
            raise StatusError(SW_WRONG_DATA) from None
        if cmd.p2 == KEY_MANAGEMENT:
            return self._management_auth(cmd.p1, fields)
        if cmd.p2 in SIGNING_SLOTS:
            return self._sign(cmd.p1, cmd.p2, fields)
        raise StatusError(SW_REF_NOT_FOUND)

    def _management_cipher(self, algorithm: int) -> tuple[Cipher[modes.ECB], int]:
        if algorithm == ALG_3DES_LEGACY:
            algorithm = ALG_3DES
        if algorithm != self.state.management_algorithm:
            raise StatusError(SW_INCORRECT_P1P2)
        key = bytes.fromhex(self.state.management_key_hex)
        if algorithm == ALG_3DES:
            return Cipher(TripleDES(key), modes.ECB()), 8
        return Cipher(algorithms.AES(key), modes.ECB()), 16

    def _management_auth(self, algorithm: int, fields: dict[int, bytes]) -> bytes:
        cipher, block = self._management_cipher(algorithm)

        def encrypt(value: bytes) -> bytes:
            enc = cipher.encryptor()
            return enc.update(value) + enc.finalize()

        witness = fields.get(TAG_WITNESS)
        challenge = fields.get(TAG_CHALLENGE)
        response = fields.get(TAG_RESPONSE)
        if witness == b"" and challenge is None:  # step 1 of mutual authentication
            self._witness = os.urandom(block)
            self.management_authenticated = False
            return tlv(TAG_DYN_AUTH, tlv(TAG_WITNESS, encrypt(self._witness)))
        if witness and challenge is not None:  # step 2: host proves it decrypted the witness
            expected, self._witness = self._witness, None
            if expected is None or len(challenge) != block or not _constant_eq(witness, expected):
                self.management_authenticated = False
                raise StatusError(SW_SECURITY)
            self.management_authenticated = True
            return tlv(TAG_DYN_AUTH, tlv(TAG_RESPONSE, encrypt(challenge)))
        if challenge == b"" and witness is None:  # external authentication: card's challenge
            self._challenge = os.urandom(block)
            self.management_authenticated = False
            return tlv(TAG_DYN_AUTH, tlv(TAG_CHALLENGE, self._challenge))
        if response and witness is None and challenge is None:
            expected_challenge, self._challenge = self._challenge, None
            if expected_challenge is None or not _constant_eq(
                response, encrypt(expected_challenge)
            ):
                self.management_authenticated = False
                raise StatusError(SW_SECURITY)
            self.management_authenticated = True
            return b""
        raise StatusError(SW_WRONG_DATA)

    def _sign(self, algorithm: int, slot: int, fields: dict[int, bytes]) -> bytes:
        record = self.state.keys.get(f"{slot:02x}")
        if record is None:
            raise StatusError(SW_NOT_FOUND)
        if record.algorithm != algorithm:
            raise StatusError(SW_INCORRECT_P1P2)
        if slot not in NO_PIN_SLOTS and not self.pin_verified:
            raise StatusError(SW_SECURITY)
        if fields.get(TAG_RESPONSE) != b"" or TAG_CHALLENGE not in fields:
            raise StatusError(SW_WRONG_DATA)
        message = fields[TAG_CHALLENGE]
        private = serialization.load_der_private_key(bytes.fromhex(record.pkcs8_hex), password=None)
        if isinstance(private, rsa.RSAPrivateKey):
            signature = _raw_rsa(private, message)
        elif isinstance(private, ec.EllipticCurvePrivateKey):
            curve_hash = _EC_CURVES[algorithm][1]
            signature = private.sign(
                _ecdsa_input(message, curve_hash.digest_size), ec.ECDSA(Prehashed(curve_hash))
            )
        else:  # pragma: no cover - only the key types above are ever generated
            raise StatusError(SW_UNKNOWN)
        return tlv(TAG_DYN_AUTH, tlv(TAG_RESPONSE, signature))


def _ecdsa_input(digest: bytes, size: int) -> bytes:
    """A digest of any common length as the curve-sized integer FIPS 186-4 (6.4) signs: a
    longer one keeps its leftmost bits (the curves here have whole-byte orders), a shorter
    one is the same integer left-padded with zeros (SHA-1 on P-256, as OpenSC sends it)."""
    if not 1 <= len(digest) <= _MAX_ECDSA_INPUT:
        raise StatusError(SW_WRONG_DATA)
    return digest[:size].rjust(size, b"\x00")


def _raw_rsa(private: rsa.RSAPrivateKey, message: bytes) -> bytes:
    """The PIV RSA operation: m^d mod n on a full-length block (padding is the host's job)."""
    numbers = private.private_numbers()
    n = numbers.public_numbers.n
    size = (n.bit_length() + 7) // 8
    if len(message) != size:
        raise StatusError(SW_WRONG_DATA)
    m = int.from_bytes(message, "big")
    if m >= n:
        raise StatusError(SW_WRONG_DATA)
    m1 = pow(m, numbers.dmp1, numbers.p)
    m2 = pow(m, numbers.dmq1, numbers.q)
    h = (numbers.iqmp * (m1 - m2)) % numbers.p
    return (m2 + h * numbers.q).to_bytes(size, "big")


def _constant_eq(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def load_card(path: Path, **kwargs: str) -> PivCard:
    """The card stored at `path` (created with default PIN/PUK/management key if missing)."""
    return PivCard(CardState.load_or_create(path, **kwargs), path)
