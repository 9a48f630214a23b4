"""PIV session (NIST SP 800-73-4) over a `SmartCardConnection`.

Select the application, read the CHUID and certificates, PIN / PUK management, management
key authentication (witness/challenge), key generation, certificate storage and signing with
GENERAL AUTHENTICATE. RSA PKCS#1 v1.5 padding is done here (the card does raw RSA).
"""

from __future__ import annotations

import gzip
import hmac
import os
import zlib
from dataclasses import dataclass
from enum import IntEnum, unique

from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from devices.errors import BadRequest, NoSuchObject
from devices.smartcard.apdu import ApduFormat, ApduProcessor, SmartCardConnection
from devices.smartcard.errors import (
    ApduError,
    BadResponseError,
    InvalidPinError,
    ObjectNotFoundError,
    PinBlockedError,
    SecurityStatusError,
)
from devices.smartcard.tlv import parse_dict, tlv, unwrap

PIV_AID = bytes.fromhex("A000000308000010000100")

INS_SELECT = 0xA4
INS_GET_DATA = 0xCB
INS_PUT_DATA = 0xDB
INS_VERIFY = 0x20
INS_CHANGE_REFERENCE = 0x24
INS_RESET_RETRY = 0x2C
INS_GENERATE = 0x47
INS_AUTHENTICATE = 0x87

KEY_PIN = 0x80
KEY_PUK = 0x81
KEY_MANAGEMENT = 0x9B

TAG_OBJECT_LIST = 0x5C
TAG_OBJECT_DATA = 0x53
TAG_CERTIFICATE = 0x70
TAG_CERT_INFO = 0x71
TAG_LRC = 0xFE
TAG_DYN_AUTH = 0x7C
TAG_WITNESS = 0x80
TAG_CHALLENGE = 0x81
TAG_RESPONSE = 0x82
TAG_GEN_TEMPLATE = 0xAC
TAG_ALGORITHM = 0x80
TAG_PUBLIC_KEY = 0x7F49
TAG_APT = 0x61
TAG_FASCN = 0x30
TAG_GUID = 0x34
TAG_EXPIRY = 0x35

OBJECT_CHUID = 0x5FC102
OBJECT_CCC = 0x5FC107

DEFAULT_MANAGEMENT_KEY = bytes.fromhex("010203040506070801020304050607080102030405060708")
PIN_MIN, PIN_MAX = 6, 8


@unique
class Slot(IntEnum):
    AUTHENTICATION = 0x9A
    SIGNATURE = 0x9C
    KEY_MANAGEMENT = 0x9D
    CARD_AUTH = 0x9E

    @property
    def object_id(self) -> int:
        return _CERT_OBJECTS[self]


_CERT_OBJECTS = {
    Slot.AUTHENTICATION: 0x5FC105,
    Slot.SIGNATURE: 0x5FC10A,
    Slot.KEY_MANAGEMENT: 0x5FC10B,
    Slot.CARD_AUTH: 0x5FC101,
}


@unique
class KeyType(IntEnum):
    RSA2048 = 0x07
    ECCP256 = 0x11
    ECCP384 = 0x14

    @property
    def is_rsa(self) -> bool:
        return self is KeyType.RSA2048


@unique
class ManagementKeyType(IntEnum):
    TDES = 0x03
    AES128 = 0x08
    AES192 = 0x0A
    AES256 = 0x0C

    @property
    def key_length(self) -> int:
        return {0x03: 24, 0x08: 16, 0x0A: 24, 0x0C: 32}[self.value]

    @property
    def block_size(self) -> int:
        return 8 if self is ManagementKeyType.TDES else 16


_EC_CURVE: dict[KeyType, ec.EllipticCurve] = {
    KeyType.ECCP256: ec.SECP256R1(),
    KeyType.ECCP384: ec.SECP384R1(),
}
_EC_FIELD_BYTES = {KeyType.ECCP256: 32, KeyType.ECCP384: 48}

# DigestInfo prefixes (RFC 8017 section 9.2, note 1)
_DIGEST_INFO = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True)
class Chuid:
    fascn: bytes
    guid: bytes
    expiry: str

    @classmethod
    def from_bytes(cls, data: bytes) -> Chuid:
        fields = parse_dict(data)
        return cls(
            fascn=fields.get(TAG_FASCN, b""),
            guid=fields.get(TAG_GUID, b""),
            expiry=fields.get(TAG_EXPIRY, b"").decode("ascii", "replace"),
        )


@dataclass(frozen=True)
class PinStatus:
    verified: bool
    attempts_remaining: int | None  # None when the card does not say (already verified)
    blocked: bool


def pin_block(pin: str, what: str = "PIN") -> bytes:
    """The 8-byte PIN reference data: 6-8 characters padded with 0xFF."""
    raw = pin.encode("utf-8")
    if not PIN_MIN <= len(raw) <= PIN_MAX or any(ch < 0x20 or ch > 0x7E for ch in raw):
        raise BadRequest(f"a {what} is 6 to 8 printable ASCII characters")
    return raw.ljust(8, b"\xff")


def pkcs1v15_block(digest: bytes, hash_name: str, size: int) -> bytes:
    """EMSA-PKCS1-v1_5 encoding of a digest for a `size`-byte modulus."""
    prefix = _DIGEST_INFO.get(hash_name)
    if prefix is None:
        raise BadRequest(f"unsupported hash for RSA PKCS#1 v1.5: {hash_name}")
    digest_info = prefix + digest
    padding = size - len(digest_info) - 3
    if padding < 8:
        raise BadRequest("digest too long for the RSA key")
    return b"\x00\x01" + b"\xff" * padding + b"\x00" + digest_info


def _hash_for(name: str) -> hashes.HashAlgorithm:
    table: dict[str, hashes.HashAlgorithm] = {
        "sha256": hashes.SHA256(),
        "sha384": hashes.SHA384(),
        "sha512": hashes.SHA512(),
    }
    if name not in table:
        raise BadRequest(f"unsupported hash algorithm: {name}")
    return table[name]


def digest(message: bytes, hash_name: str) -> bytes:
    h = hashes.Hash(_hash_for(hash_name))
    h.update(message)
    return h.finalize()


class PivSession:
    """A PIV application session on one card (selects the application on creation)."""

    def __init__(
        self, connection: SmartCardConnection, apdu_format: ApduFormat = ApduFormat.SHORT
    ) -> None:
        self.protocol = ApduProcessor(connection, apdu_format)
        self.application_template = self.select()

    # -- selection and data objects --------------------------------------------------------
    def select(self) -> bytes:
        try:
            response = self.protocol.send(0x00, INS_SELECT, 0x04, 0x00, PIV_AID)
        except ObjectNotFoundError:
            raise NoSuchObject("the card has no PIV application") from None
        return response

    def get_object(self, object_id: int) -> bytes:
        """The value inside the object's 53 wrapper (7E for the discovery object)."""
        request = tlv(TAG_OBJECT_LIST, object_id.to_bytes(3 if object_id > 0xFFFF else 1, "big"))
        try:
            response = self.protocol.send(0x00, INS_GET_DATA, 0x3F, 0xFF, request)
        except ObjectNotFoundError:
            raise NoSuchObject(f"data object {object_id:X} is not on the card") from None
        return unwrap(response, 0x7E if object_id == 0x7E else TAG_OBJECT_DATA)

    def put_object(self, object_id: int, value: bytes) -> None:
        """Write a data object (needs management key authentication); b"" deletes it."""
        request = tlv(TAG_OBJECT_LIST, object_id.to_bytes(3, "big")) + tlv(TAG_OBJECT_DATA, value)
        self.protocol.send(0x00, INS_PUT_DATA, 0x3F, 0xFF, request)

    def read_chuid(self) -> Chuid:
        return Chuid.from_bytes(self.get_object(OBJECT_CHUID))

    def get_certificate(self, slot: Slot) -> x509.Certificate:
        try:
            fields = parse_dict(self.get_object(slot.object_id))
        except NoSuchObject:
            raise NoSuchObject(f"no certificate in slot {slot.value:02X}") from None
        der = fields.get(TAG_CERTIFICATE)
        if not der:
            raise NoSuchObject(f"no certificate in slot {slot.value:02X}")
        info = fields.get(TAG_CERT_INFO, b"\x00")
        if info and info[0] & 0x01:
            try:
                der = gzip.decompress(der)
            except (OSError, EOFError, zlib.error):
                raise BadResponseError("the certificate on the card is not valid gzip") from None
        try:
            return x509.load_der_x509_certificate(der)
        except ValueError:
            raise BadResponseError(
                f"the object in slot {slot.value:02X} is not an X.509 certificate"
            ) from None

    def put_certificate(self, slot: Slot, certificate: x509.Certificate) -> None:
        der = certificate.public_bytes(serialization.Encoding.DER)
        self.put_object(
            slot.object_id,
            tlv(TAG_CERTIFICATE, der) + tlv(TAG_CERT_INFO, b"\x00") + tlv(TAG_LRC, b""),
        )

    def delete_certificate(self, slot: Slot) -> None:
        self.put_object(slot.object_id, b"")

    # -- PIN and PUK -----------------------------------------------------------------------
    def verify_pin(self, pin: str) -> None:
        """Raises InvalidPinError (attempts left) or PinBlockedError."""
        self.protocol.send(0x00, INS_VERIFY, 0x00, KEY_PIN, pin_block(pin), le=0)

    def unverify_pin(self) -> None:
        """Reset the PIN's verified state (VERIFY with P1 = FF)."""
        self.protocol.send(0x00, INS_VERIFY, 0xFF, KEY_PIN, le=0)

    def pin_status(self) -> PinStatus:
        try:
            self.protocol.send(0x00, INS_VERIFY, 0x00, KEY_PIN, le=0)
        except PinBlockedError:
            return PinStatus(verified=False, attempts_remaining=0, blocked=True)
        except InvalidPinError as exc:
            return PinStatus(
                verified=False, attempts_remaining=exc.attempts_remaining, blocked=False
            )
        return PinStatus(verified=True, attempts_remaining=None, blocked=False)

    def change_pin(self, old_pin: str, new_pin: str) -> None:
        data = pin_block(old_pin) + pin_block(new_pin, "new PIN")
        self.protocol.send(0x00, INS_CHANGE_REFERENCE, 0x00, KEY_PIN, data, le=0)

    def change_puk(self, old_puk: str, new_puk: str) -> None:
        data = pin_block(old_puk, "PUK") + pin_block(new_puk, "new PUK")
        self.protocol.send(0x00, INS_CHANGE_REFERENCE, 0x00, KEY_PUK, data, le=0, what="PUK")

    def unblock_pin(self, puk: str, new_pin: str) -> None:
        data = pin_block(puk, "PUK") + pin_block(new_pin, "new PIN")
        self.protocol.send(0x00, INS_RESET_RETRY, 0x00, KEY_PIN, data, le=0, what="PUK")

    # -- management key --------------------------------------------------------------------
    def authenticate(
        self,
        management_key: bytes = DEFAULT_MANAGEMENT_KEY,
        key_type: ManagementKeyType = ManagementKeyType.TDES,
    ) -> None:
        """Mutual authentication with the card's management key (9B)."""
        if len(management_key) != key_type.key_length:
            raise BadRequest(
                f"a {key_type.name} management key is {key_type.key_length} bytes"
            )
        cipher = Cipher(
            TripleDES(management_key)
            if key_type is ManagementKeyType.TDES
            else algorithms.AES(management_key),
            modes.ECB(),
        )
        request = tlv(TAG_DYN_AUTH, tlv(TAG_WITNESS))
        response = self.protocol.send(0x00, INS_AUTHENTICATE, key_type, KEY_MANAGEMENT, request)
        witness_enc = parse_dict(unwrap(response, TAG_DYN_AUTH)).get(TAG_WITNESS, b"")
        if len(witness_enc) != key_type.block_size:
            raise BadResponseError("the card's witness has the wrong length")
        decryptor = cipher.decryptor()
        witness = decryptor.update(witness_enc) + decryptor.finalize()
        challenge = os.urandom(key_type.block_size)
        request = tlv(TAG_DYN_AUTH, tlv(TAG_WITNESS, witness) + tlv(TAG_CHALLENGE, challenge))
        try:
            response = self.protocol.send(0x00, INS_AUTHENTICATE, key_type, KEY_MANAGEMENT, request)
        except SecurityStatusError:
            raise SecurityStatusError(b"", 0x6982) from None
        encryptor = cipher.encryptor()
        expected = encryptor.update(challenge) + encryptor.finalize()
        answer = parse_dict(unwrap(response, TAG_DYN_AUTH)).get(TAG_RESPONSE, b"")
        if not hmac.compare_digest(answer, expected):
            raise BadResponseError("the card did not prove knowledge of the management key")

    # -- keys ------------------------------------------------------------------------------
    def generate_key(self, slot: Slot, key_type: KeyType) -> PublicKey:
        """Generate a key pair on the card (needs management key authentication)."""
        request = tlv(TAG_GEN_TEMPLATE, tlv(TAG_ALGORITHM, bytes([key_type])))
        response = self.protocol.send(0x00, INS_GENERATE, 0x00, slot, request)
        fields = parse_dict(unwrap(response, TAG_PUBLIC_KEY))
        try:
            if key_type.is_rsa:
                n = int.from_bytes(fields[0x81], "big")
                e = int.from_bytes(fields[0x82], "big")
                return rsa.RSAPublicNumbers(e, n).public_key()
            return ec.EllipticCurvePublicKey.from_encoded_point(_EC_CURVE[key_type], fields[0x86])
        except (KeyError, ValueError):
            raise BadResponseError("the card returned a malformed public key") from None

    def sign_digest(
        self, slot: Slot, key_type: KeyType, message_digest: bytes, hash_name: str = "sha256"
    ) -> bytes:
        """Sign a digest: ECDSA (DER signature) or RSA PKCS#1 v1.5 (padding done here)."""
        if key_type.is_rsa:
            payload = pkcs1v15_block(message_digest, hash_name, 256)
        else:
            size = _EC_FIELD_BYTES[key_type]
            payload = message_digest[:size].rjust(size, b"\x00")
        request = tlv(TAG_DYN_AUTH, tlv(TAG_RESPONSE) + tlv(TAG_CHALLENGE, payload))
        response = self.protocol.send(0x00, INS_AUTHENTICATE, key_type, slot, request)
        signature = parse_dict(unwrap(response, TAG_DYN_AUTH)).get(TAG_RESPONSE)
        if not signature:
            raise BadResponseError("the card returned no signature")
        if not key_type.is_rsa:
            r, s = decode_dss_signature(signature)  # validates the DER
            signature = encode_dss_signature(r, s)
        return signature

    def sign(
        self, slot: Slot, key_type: KeyType, message: bytes, hash_name: str = "sha256"
    ) -> bytes:
        return self.sign_digest(slot, key_type, digest(message, hash_name), hash_name)


def verify_signature(
    public_key: PublicKey, signature: bytes, message: bytes, hash_name: str = "sha256"
) -> bool:
    """Check a signature made by `PivSession.sign` (host-side, with cryptography)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, message, padding.PKCS1v15(), _hash_for(hash_name))
        else:
            public_key.verify(signature, message, ec.ECDSA(_hash_for(hash_name)))
    except InvalidSignature:
        return False
    return True


__all__ = [
    "ApduError",
    "Chuid",
    "KeyType",
    "ManagementKeyType",
    "PinStatus",
    "PivSession",
    "Slot",
    "verify_signature",
]
