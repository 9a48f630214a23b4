"""What a branch does with a customer's security token, over a TokenSession."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum, unique

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from devices.errors import AlreadyPresent, BadRequest, NoSuchObject, WrongState
from devices.token.certificates import (
    RENEWAL_WINDOW_DAYS,
    CertificateInfo,
    certificate_info,
    load_certificate,
)
from devices.token.csr import TokenEcKey, TokenRsaKey, build_csr, parse_subject
from devices.token.keys import KeyInfo, KeySpec, PublicKey, public_key_from_record, spki_der
from devices.token.session import KeyType, Mech, ObjectClass, ObjectRecord, TokenSession
from devices.token.signing import SignAlgorithm, default_algorithm, encode_ecdsa, plan, verify

MAX_LABEL = 64
MAX_KEY_ID = 64
DEFAULT_KEY_ID_LEN = 16
DEFAULT_MAX_DATA = 1 << 20
MAX_CERTIFICATE = 16 * 1024


@unique
class DeleteScope(StrEnum):
    KEY_PAIR = "key_pair"  # private + public key (a certificate with the same id stays)
    CERTIFICATE = "certificate"
    ALL = "all"


@dataclass(frozen=True)
class Signature:
    key_id: bytes
    algorithm: SignAlgorithm
    signature: bytes


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def check_label(label: str) -> str:
    if not label or len(label) > MAX_LABEL or not label.isprintable():
        raise BadRequest(f"a label is 1 to {MAX_LABEL} printable characters")
    return label


def check_key_id(key_id: bytes) -> bytes:
    if not key_id or len(key_id) > MAX_KEY_ID:
        raise BadRequest(f"a key id is 1 to {MAX_KEY_ID} bytes")
    return key_id


class TokenDevice:
    """Keys, certificates and signatures on one token (the yubikit-style session object)."""

    def __init__(
        self,
        session: TokenSession,
        *,
        now: Callable[[], dt.datetime] = _utcnow,
        max_data: int = DEFAULT_MAX_DATA,
        renewal_window_days: int = RENEWAL_WINDOW_DAYS,
    ) -> None:
        self.session = session
        self._now = now
        self.max_data = max_data
        self.renewal_window_days = renewal_window_days
        self._mechanisms: frozenset[int] | None = None

    @property
    def mechanisms(self) -> frozenset[int]:
        if self._mechanisms is None:
            self._mechanisms = self.session.mechanisms()
        return self._mechanisms

    # --------------------------------------------------------------- keys
    def generate_key(self, spec: KeySpec, label: str, key_id: bytes | None = None) -> KeyInfo:
        check_label(label)
        key_id = check_key_id(key_id) if key_id is not None else os.urandom(DEFAULT_KEY_ID_LEN)
        gen = Mech.EC_KEY_PAIR_GEN if spec.key_type is KeyType.EC else Mech.RSA_PKCS_KEY_PAIR_GEN
        if int(gen) not in self.mechanisms:
            raise WrongState(f"the token does not support mechanism CKM_{gen.name}")
        if self.session.find_objects(key_id=key_id):
            raise AlreadyPresent(f"the token already holds objects with key id {key_id.hex()}")
        self.session.generate_key_pair(
            int(spec.key_type), key_id, label, rsa_bits=spec.rsa_bits, ec_params=spec.ec_params
        )
        return self.key(key_id)

    def list_keys(self) -> list[KeyInfo]:
        return _group_keys(self.session.find_objects())

    def key(self, key_id: bytes) -> KeyInfo:
        check_key_id(key_id)
        keys = _group_keys(self.session.find_objects(key_id=key_id))
        if not keys:
            raise NoSuchObject(f"no key with id {key_id.hex()} on the token")
        return keys[0]

    def public_key(self, key_id: bytes) -> PublicKey:
        check_key_id(key_id)
        records = self.session.find_objects(ObjectClass.PUBLIC_KEY, key_id)
        if records:
            return public_key_from_record(records[0])
        certs = self.session.find_objects(ObjectClass.CERTIFICATE, key_id)
        if certs and certs[0].value:
            key = load_certificate(certs[0].value).public_key()
            if isinstance(key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
                return key
        raise NoSuchObject(f"no key with id {key_id.hex()} on the token")

    def _private_key_type(self, key_id: bytes) -> KeyType:
        records = self.session.find_objects(ObjectClass.PRIVATE_KEY, key_id)
        if not records:
            raise NoSuchObject(f"no private key with id {key_id.hex()} on the token (logged in?)")
        key_type = records[0].key_type
        if key_type not in (KeyType.EC, KeyType.RSA):
            raise WrongState("the key is neither EC nor RSA")
        return KeyType(key_type)

    # ---------------------------------------------------------------- sign
    def sign(
        self,
        key_id: bytes,
        *,
        data: bytes | None = None,
        digest: bytes | None = None,
        algorithm: SignAlgorithm | None = None,
        token_hashes: bool = False,
    ) -> Signature:
        check_key_id(key_id)
        if data is not None and len(data) > self.max_data:
            raise BadRequest(
                f"the data is {len(data)} bytes; at most {self.max_data} can be signed"
            )
        key_type = self._private_key_type(key_id)
        algorithm = algorithm or default_algorithm(key_type)
        p = plan(
            algorithm,
            key_type,
            self.mechanisms,
            data=data,
            digest=digest,
            token_hashes=token_hashes,
        )
        raw = self.session.sign(key_id, int(p.mechanism), p.payload, p.pss)
        return Signature(key_id, algorithm, encode_ecdsa(raw) if p.der_encode_ecdsa else raw)

    def sign_many(
        self,
        key_id: bytes,
        inputs: Sequence[tuple[bytes | None, bytes | None]],
        out: list[Signature],
        *,
        algorithm: SignAlgorithm | None = None,
        token_hashes: bool = False,
    ) -> None:
        """:meth:`sign` for each ``(data, digest)`` with the same key and algorithm, in order,
        on one token session; each signature is appended to ``out``. The first input that
        cannot be signed raises its error once those before it are signed (``out`` holds
        them); nothing after it is signed."""
        check_key_id(key_id)
        if inputs:  # the checks of sign(), in its order
            self._check_size(inputs[0][0])
        key_type = self._private_key_type(key_id)
        chosen = algorithm or default_algorithm(key_type)
        payloads: list[bytes] = []
        plans = None
        failed: Exception | None = None
        for data, digest in inputs:
            try:
                self._check_size(data)
                # One algorithm and token_hashes for all: one mechanism for all.
                plans = plan(chosen, key_type, self.mechanisms, data=data, digest=digest,
                             token_hashes=token_hashes)
            except Exception as exc:
                failed = exc
                break
            payloads.append(plans.payload)
        if plans is not None and payloads:
            raw: list[bytes] = []
            der = plans.der_encode_ecdsa
            try:
                self.session.sign_many(key_id, int(plans.mechanism), payloads, plans.pss, raw)
            finally:
                out.extend(Signature(key_id, chosen, encode_ecdsa(r) if der else r)
                           for r in raw)
        if failed is not None:
            raise failed

    def _check_size(self, data: bytes | None) -> None:
        if data is not None and len(data) > self.max_data:
            raise BadRequest(
                f"the data is {len(data)} bytes; at most {self.max_data} can be signed"
            )

    def verify(
        self,
        key_id: bytes,
        signature: bytes,
        *,
        data: bytes | None = None,
        digest: bytes | None = None,
        algorithm: SignAlgorithm | None = None,
    ) -> bool:
        key = self.public_key(key_id)
        key_type = KeyType.EC if isinstance(key, ec.EllipticCurvePublicKey) else KeyType.RSA
        algorithm = algorithm or default_algorithm(key_type)
        if algorithm.key_type is not key_type:
            raise BadRequest(f"algorithm {algorithm.value} does not fit a {key_type.name} key")
        if data is not None and len(data) > self.max_data:
            raise BadRequest(
                f"the data is {len(data)} bytes; at most {self.max_data} can be verified"
            )
        return verify(key, algorithm, signature, data=data, digest=digest)

    # ----------------------------------------------------------------- CSR
    def create_csr(self, key_id: bytes, subject: str, *, pss: bool = False) -> bytes:
        """A PKCS#10 request (DER) for the key, signed on the token."""
        name = parse_subject(subject)
        key_type = self._private_key_type(key_id)
        public = self.public_key(key_id)

        def signer(algorithm: SignAlgorithm, digest: bytes) -> bytes:
            return self.sign(key_id, digest=digest, algorithm=algorithm).signature

        if key_type is KeyType.EC and isinstance(public, ec.EllipticCurvePublicKey):
            csr = build_csr(TokenEcKey(public, signer), name)
        elif isinstance(public, rsa.RSAPublicKey):
            csr = build_csr(TokenRsaKey(public, signer), name, pss=pss)
        else:
            raise WrongState("the public key does not match the private key type")
        return csr.public_bytes(serialization.Encoding.DER)

    # --------------------------------------------------------- certificates
    def import_certificate(
        self, certificate: bytes, *, label: str | None = None, replace: bool = False
    ) -> CertificateInfo:
        """Store the certificate next to its key (same CKA_ID), found by public key."""
        if not certificate or len(certificate) > MAX_CERTIFICATE:
            raise BadRequest(f"a certificate is 1 to {MAX_CERTIFICATE} bytes")
        cert = load_certificate(certificate)
        spki = spki_der(_cert_key(cert))
        match = next((k for k in self.list_keys() if k.public_key_der == spki), None)
        if match is None or not match.has_private:
            raise WrongState(
                "no key pair on the token matches the certificate's public key"
            )
        label = check_label(label) if label is not None else match.label
        existing = self.session.find_objects(ObjectClass.CERTIFICATE, match.key_id)
        if existing and not replace:
            raise AlreadyPresent(
                f"key {match.key_id.hex()} already has a certificate (replace it explicitly)"
            )
        if existing:
            # PKCS#11 has no atomic replace: drop the old certificate, store the new one,
            # and put the old one back if storing fails.
            self.session.destroy_objects(match.key_id, ObjectClass.CERTIFICATE)
            try:
                self._store_certificate(match.key_id, label, cert)
            except Exception:
                for old in existing:
                    if old.value:
                        self._store_certificate(
                            match.key_id, old.label, x509.load_der_x509_certificate(old.value)
                        )
                raise
        else:
            self._store_certificate(match.key_id, label, cert)
        return certificate_info(cert, match.key_id, label, self._now(), self.renewal_window_days)

    def _store_certificate(self, key_id: bytes, label: str, cert: x509.Certificate) -> None:
        self.session.create_certificate(
            key_id,
            label,
            cert.public_bytes(serialization.Encoding.DER),
            cert.subject.public_bytes(),
            cert.issuer.public_bytes(),
            _der_integer(cert.serial_number),
        )

    def list_certificates(self) -> list[CertificateInfo]:
        now = self._now()
        out: list[CertificateInfo] = []
        for record in self.session.find_objects(ObjectClass.CERTIFICATE):
            if not record.value:
                continue
            try:
                cert = x509.load_der_x509_certificate(record.value)
            except ValueError:
                continue  # an unreadable certificate object: skip, never crash the listing
            out.append(
                certificate_info(cert, record.key_id, record.label, now, self.renewal_window_days)
            )
        return sorted(out, key=lambda c: (c.label, c.key_id))

    # -------------------------------------------------------------- delete
    def delete(self, key_id: bytes, scope: DeleteScope = DeleteScope.ALL) -> int:
        check_key_id(key_id)
        by_scope: dict[DeleteScope, list[int | None]] = {
            DeleteScope.ALL: [None],
            DeleteScope.CERTIFICATE: [int(ObjectClass.CERTIFICATE)],
            DeleteScope.KEY_PAIR: [int(ObjectClass.PRIVATE_KEY), int(ObjectClass.PUBLIC_KEY)],
        }
        classes = by_scope[scope]
        present = [
            r
            for r in self.session.find_objects(key_id=key_id)
            if classes == [None] or r.object_class in classes
        ]
        if not present:
            what = scope.value.replace("_", " ")
            raise NoSuchObject(f"no {what} objects with key id {key_id.hex()}")
        return sum(self.session.destroy_objects(key_id, c) for c in classes)


def _cert_key(cert: x509.Certificate) -> PublicKey:
    key = cert.public_key()
    if not isinstance(key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
        raise BadRequest("the certificate's key is neither EC nor RSA")
    return key


def _der_integer(value: int) -> bytes:
    """DER INTEGER encoding of a non-negative int (for CKA_SERIAL_NUMBER)."""
    body = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big")
    if len(body) < 0x80:
        return bytes([0x02, len(body)]) + body
    length = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
    return bytes([0x02, 0x80 | len(length)]) + length + body


def _group_keys(records: Sequence[ObjectRecord]) -> list[KeyInfo]:
    by_id: dict[bytes, dict[int, ObjectRecord]] = {}
    for r in records:
        by_id.setdefault(r.key_id, {})[int(r.object_class)] = r
    keys: list[KeyInfo] = []
    for key_id, objs in by_id.items():
        pub = objs.get(ObjectClass.PUBLIC_KEY)
        priv = objs.get(ObjectClass.PRIVATE_KEY)
        cert = objs.get(ObjectClass.CERTIFICATE)
        public: PublicKey | None = None
        if pub is not None:
            public = public_key_from_record(pub)
        elif cert is not None and cert.value:
            try:
                public = _cert_key(x509.load_der_x509_certificate(cert.value))
            except (ValueError, BadRequest):
                public = None
        if public is None:
            continue
        key_type = KeyType.EC if isinstance(public, ec.EllipticCurvePublicKey) else KeyType.RSA
        label = (pub or priv or cert).label  # type: ignore[union-attr]
        keys.append(
            KeyInfo(
                key_id=key_id,
                label=label,
                key_type=key_type,
                bits=public.key_size,
                public_key_der=spki_der(public),
                has_private=priv is not None,
                has_certificate=cert is not None,
                extractable=priv.extractable if priv is not None else None,
            )
        )
    return sorted(keys, key=lambda k: (k.label, k.key_id))
