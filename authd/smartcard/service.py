"""Smartcard operations for the daemon: readers, card info, PIV for tellers, raw APDUs, and
the registration of a customer's card at the branch (recorded at the center).

The public operations are coroutines: the card work runs on the reader's own thread
(`CardAccess`), the caller awaits it on the event loop. Secrets (PIN, PUK, management key)
pass through to the card and are never logged, audited or kept.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from authd import validate
from authd.context import Caller
from authd.customer.models import BranchRegistration, MediumKind
from authd.customer.registrations import BranchRegistrations, check_serial
from authd.signing import SignatureGuard
from authd.smartcard.access import CardAccess
from authd.smartcard.lending import Lending
from authd.smartcard.models import (
    CardInfo,
    CertificateInfo,
    PinOutcome,
    PinResult,
    PivStatus,
    SignResult,
)
from authd.smartcard.settings import SmartcardSettings
from authd.v1 import call_link_pb2
from devices.errors import BadRequest, NoSuchObject, Unreachable, WrongState
from devices.smartcard.errors import ApduError, InvalidPinError
from devices.smartcard.piv import (
    KeyType,
    ManagementKeyType,
    PivSession,
    PublicKey,
    Slot,
    digest,
    verify_signature,
)
from drivers.errors import DriverError
from drivers.pcsc.connection import PcscConnection
from drivers.pcsc.events import EventKind, ReaderEvent, Snapshot
from drivers.pcsc.monitor import ReaderMonitor

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_READER_NAME = 200
KNOWN_APPLETS: tuple[tuple[str, bytes], ...] = (
    ("PIV", bytes.fromhex("A000000308000010000100")),
    ("OpenPGP", bytes.fromhex("D27600012401")),
    ("FIDO U2F", bytes.fromhex("A0000006472F0001")),
    ("GlobalPlatform ISD", bytes.fromhex("A000000151000000")),
)
_DIGEST_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}
# Instructions that leave a security state on the card (ISO 7816-4, SP 800-73-4): VERIFY,
# CHANGE REFERENCE DATA, RESET RETRY COUNTER, EXTERNAL / MUTUAL AUTHENTICATE, GENERAL
# AUTHENTICATE (both INS), MANAGE SECURITY ENVIRONMENT. The card connection is shared by every
# caller of the reader: a raw Transmit carrying one of them ends by selecting the PIV
# application again (_drop_security_state), so a PIN verified in one caller's APDUs never lets
# another caller's APDUs sign.
SECURITY_STATE_INS = frozenset({0x20, 0x24, 0x2C, 0x82, 0x86, 0x87, 0x22})
PIV_AID = KNOWN_APPLETS[0][1]
TRANSMIT = "/authd.v1.SmartcardService/Transmit"
TRANSMIT_STREAM = "/authd.v1.SmartcardService/TransmitStream"


Audit = Callable[[str, str, str, dict[str, Any]], None]


def _no_center() -> BranchRegistrations:
    raise Unreachable("no center to record smartcard registrations at")


class SmartcardService:
    """What the servicer calls. `audit(action, target, outcome, detail)` records state changes;
    `registrations()` is where card registrations are recorded (the center)."""

    def __init__(self, settings: SmartcardSettings, audit: Audit,
                 registrations: Callable[[], BranchRegistrations] = _no_center) -> None:
        self.settings = settings
        self.audit = audit
        self.registrations = registrations
        self.monitor = ReaderMonitor(poll_ms=settings.poll_ms)
        self.lending = Lending(TRANSMIT, settings.lend_after_calls,
                               settings.idle_release_seconds, settings.max_apdu_bytes,
                               SECURITY_STATE_INS, stream_method=TRANSMIT_STREAM)
        self.access = CardAccess(settings.idle_release_seconds, reclaim=self.lending.take_back)
        self._unsubscribe = self.monitor.subscribe(self._on_event)
        # Installed by the certificate feature: checks the slot's certificate before it signs.
        self.guard: SignatureGuard | None = None

    def start(self) -> None:
        self.monitor.start()

    def close(self) -> None:
        self._unsubscribe()
        self.monitor.stop()
        self.access.close()

    def _on_event(self, event: ReaderEvent) -> None:
        if event.kind == EventKind.CARD_REMOVED:
            self.lending.recall(event.reader)
            self.access.release(event.reader)
        elif event.kind == EventKind.READER_REMOVED:
            self.lending.recall(event.reader)
            self.access.forget(event.reader)

    # -- readers ---------------------------------------------------------------------------
    @property
    def available(self) -> bool:
        return self.monitor.snapshot().available

    def snapshot(self) -> Snapshot:
        return self.monitor.snapshot()

    def _check_reader(self, reader: str) -> None:
        if not reader or len(reader) > MAX_READER_NAME:
            raise BadRequest(f"reader must be 1..{MAX_READER_NAME} characters")
        snap = self.monitor.snapshot()
        if not snap.available:
            raise Unreachable("the PC/SC service (pcscd) is not reachable")
        if reader not in snap.readers:
            raise NoSuchObject(f"no reader named {reader!r}")
        if snap.readers[reader] is None:
            raise Unreachable(f"no card in reader {reader!r}")

    async def _run(self, reader: str, work: Callable[[PcscConnection], T]) -> T:
        self._check_reader(reader)
        return await self.access.run(reader, work)

    async def _piv(self, reader: str, work: Callable[[PivSession], T]) -> T:
        def on_card(connection: PcscConnection) -> T:
            piv = PivSession(connection)
            try:
                return work(piv)
            finally:
                try:
                    piv.select()  # drops the PIN-verified and management-key states
                except (ApduError, DriverError, NoSuchObject):
                    pass

        return await self._run(reader, on_card)

    async def with_piv(self, reader: str, work: Callable[[PivSession], T]) -> T:
        """``work`` on the card's PIV application, on the reader's thread, holding the card
        (e.g. issuing a certificate onto it: key generation, a CSR signed by the card, the
        certificate)."""
        return await self._piv(reader, work)

    # -- card info -------------------------------------------------------------------------
    async def card_info(self, reader: str) -> CardInfo:
        def work(connection: PcscConnection) -> CardInfo:
            found = []
            for name, aid in KNOWN_APPLETS:
                select = bytes([0x00, 0xA4, 0x04, 0x00, len(aid)]) + aid + b"\x00"
                _data, sw = connection.send_and_receive(select)
                while sw >> 8 == 0x61:  # drain a long FCI
                    _data, sw = connection.send_and_receive(bytes([0, 0xC0, 0, 0, sw & 0xFF]))
                if sw == 0x9000:
                    found.append((name, aid))
            return CardInfo(reader, connection.atr, found)

        return await self._run(reader, work)

    # -- PIV -------------------------------------------------------------------------------
    async def piv_status(self, reader: str) -> PivStatus:
        def work(piv: PivSession) -> PivStatus:
            chuid = piv.read_chuid()
            pin = piv.pin_status()
            certificates = []
            for slot in Slot:
                try:
                    certificates.append(CertificateInfo(slot, piv.get_certificate(slot)))
                except NoSuchObject:
                    continue
            return PivStatus(
                chuid.guid,
                chuid.fascn,
                chuid.expiry,
                pin.attempts_remaining or 0,
                pin.blocked,
                certificates,
            )

        return await self._piv(reader, work)

    def _card_id(self, piv: PivSession) -> str:
        try:
            return "card:" + piv.read_chuid().guid.hex()
        except (NoSuchObject, ApduError):
            return "card:unknown"

    async def verify_pin(self, reader: str, pin: str) -> PinResult:
        def work(piv: PivSession) -> PinResult:
            try:
                piv.verify_pin(pin)
            except InvalidPinError as exc:
                return PinResult.from_error(exc)
            return PinResult(PinOutcome.OK, piv_attempts(piv))

        return await self._piv(reader, work)

    async def change_pin(self, reader: str, old_pin: str, new_pin: str) -> PinResult:
        def work(piv: PivSession) -> PinResult:
            target = self._card_id(piv)
            try:
                piv.change_pin(old_pin, new_pin)
            except InvalidPinError as exc:
                result = PinResult.from_error(exc)
                self.audit("smartcard.change_pin", target, result.outcome.value, {})
                return result
            self.audit("smartcard.change_pin", target, "ok", {})
            return PinResult(PinOutcome.OK, piv_attempts(piv))

        return await self._piv(reader, work)

    async def unblock_pin(self, reader: str, puk: str, new_pin: str) -> PinResult:
        def work(piv: PivSession) -> PinResult:
            target = self._card_id(piv)
            try:
                piv.unblock_pin(puk, new_pin)
            except InvalidPinError as exc:
                result = PinResult.from_error(exc)
                self.audit("smartcard.unblock_pin", target, result.outcome.value, {})
                return result
            self.audit("smartcard.unblock_pin", target, "ok", {})
            return PinResult(PinOutcome.OK, piv_attempts(piv))

        return await self._piv(reader, work)

    def _management_key(self, key: bytes) -> bytes:
        key = key or self.settings.management_key
        if len(key) != ManagementKeyType.TDES.key_length:
            raise BadRequest("the management key is 24 bytes (3DES)")
        return key

    async def generate_key(
        self, reader: str, slot: Slot, key_type: KeyType, management_key: bytes
    ) -> PublicKey:
        key = self._management_key(management_key)

        def work(piv: PivSession) -> PublicKey:
            target = self._card_id(piv)
            piv.authenticate(key)
            public_key = piv.generate_key(slot, key_type)
            detail = {"slot": f"{slot.value:02X}", "algorithm": key_type.name}
            self.audit("smartcard.generate_key", target, "ok", detail)
            return public_key

        return await self._piv(reader, work)

    async def import_certificate(
        self, reader: str, slot: Slot, der: bytes, management_key: bytes
    ) -> x509.Certificate:
        key = self._management_key(management_key)
        try:
            certificate = x509.load_der_x509_certificate(der)
        except ValueError:
            raise BadRequest("certificate_der is not a DER X.509 certificate") from None
        if len(der) > 3000:
            raise BadRequest("the certificate is larger than a PIV container (3000 bytes)")

        def work(piv: PivSession) -> x509.Certificate:
            target = self._card_id(piv)
            piv.authenticate(key)
            piv.put_certificate(slot, certificate)
            detail = {
                "slot": f"{slot.value:02X}",
                "subject": certificate.subject.rfc4514_string()[:200],
                "serial": format(certificate.serial_number, "x"),
            }
            self.audit("smartcard.import_certificate", target, "ok", detail)
            return certificate

        return await self._piv(reader, work)

    async def sign(
        self,
        reader: str,
        slot: Slot,
        key_type: KeyType,
        pin: str,
        message: bytes,
        message_digest: bytes,
        hash_name: str,
    ) -> SignResult:
        hash_name = hash_name or "sha256"
        if hash_name not in _DIGEST_SIZES:
            raise BadRequest("hash must be sha256, sha384 or sha512")
        if bool(message) == bool(message_digest):
            raise BadRequest("give exactly one of message and digest")
        if message_digest and len(message_digest) != _DIGEST_SIZES[hash_name]:
            raise BadRequest(f"a {hash_name} digest is {_DIGEST_SIZES[hash_name]} bytes")
        if len(message) > 1 << 20:
            raise BadRequest("message larger than 1 MiB: send its digest")

        def work(piv: PivSession) -> SignResult:
            if self.guard is not None:
                try:
                    der: bytes | None = piv.get_certificate(slot).public_bytes(
                        serialization.Encoding.DER)
                except NoSuchObject:
                    der = None
                self.guard.check(der, medium="smartcard", device=self._card_id(piv))
            value = message_digest or digest(message, hash_name)  # off the event loop
            try:
                piv.verify_pin(pin)
            except InvalidPinError as exc:
                return SignResult(PinResult.from_error(exc), b"")
            signature = piv.sign_digest(slot, key_type, value, hash_name)
            target = self._card_id(piv)
            self.audit("smartcard.sign", target, "ok", {"slot": f"{slot.value:02X}"})
            return SignResult(PinResult(PinOutcome.OK, piv_attempts(piv)), signature)

        return await self._piv(reader, work)

    # -- registration at the branch ----------------------------------------------------------
    async def register_card(self, caller: Caller, reader: str, pin: str, customer_id: str,
                            operator: str, terminal: str, key_slot: Slot | None = None,
                            ) -> tuple[PinResult, BranchRegistration | None]:
        """The customer verifies the PIN at this terminal; the center then records the card
        (the GUID of its CHUID) for the institution's customer (a blocking call, off the
        event loop). A wrong PIN records nothing. With ``key_slot``, the public key of that
        slot's certificate is recorded with the registration (the key transfers are signed
        with, as ``RegisterToken --key-id`` records a token's), once the card has signed a
        fresh challenge that verifies with it."""
        validate.customer_ref(customer_id)
        validate.text(operator, "operator_id", required=True)
        terminal = validate.text(terminal, "terminal") or caller.subject

        def work(piv: PivSession) -> tuple[PinResult, str, bytes]:
            try:
                piv.verify_pin(pin)
            except InvalidPinError as exc:
                return PinResult.from_error(exc), "", b""
            try:
                guid = piv.read_chuid().guid
            except (NoSuchObject, ApduError):
                guid = b""
            public_key = card_signing_key(piv, key_slot) if key_slot is not None else b""
            return PinResult(PinOutcome.OK, piv_attempts(piv)), guid.hex().upper(), public_key

        result, serial, public_key = await self._piv(reader, work)
        if result.outcome is not PinOutcome.OK:
            return result, None
        if not serial.strip("0"):
            raise WrongState("the card's CHUID names no GUID: it cannot be registered")
        reg = await asyncio.to_thread(
            self.registrations().register, caller, MediumKind.SMARTCARD, serial, customer_id,
            terminal=terminal, operator=operator, public_key=public_key)
        return result, reg

    def deregister_card(self, caller: Caller, card_serial: str, customer_id: str,
                        operator: str, reason: str) -> BranchRegistration:
        serial = check_serial(card_serial, "card_serial").upper()
        return self.registrations().deregister(caller, MediumKind.SMARTCARD, serial,
                                               customer_id, operator=operator, reason=reason)

    # -- raw APDUs -------------------------------------------------------------------------
    def check_apdus(self, apdus: list[bytes]) -> None:
        if not apdus:
            raise BadRequest("apdus must not be empty")
        if len(apdus) > self.settings.max_batch:
            raise BadRequest(f"at most {self.settings.max_batch} APDUs per call")
        for apdu in apdus:
            if not 4 <= len(apdu) <= self.settings.max_apdu_bytes:
                raise BadRequest(
                    f"an APDU is 4..{self.settings.max_apdu_bytes} bytes (got {len(apdu)})"
                )

    async def transmit(self, reader: str, apdus: list[bytes]) -> list[tuple[bytes, int]]:
        return await self._run(reader, self._transmitter(apdus))

    def transmit_then(self, reader: str, apdus: list[bytes],
                      done: Callable[[list[tuple[bytes, int]] | None, BaseException | None],
                                     None], may_wait: bool = False,
                      lent: Callable[[call_link_pb2.CardLease], None] | None = None) -> None:
        """``transmit`` for a caller without an event loop (the front end's call link):
        ``done(responses, error)`` is called on the reader's thread, or on this one when
        ``may_wait`` and the reader is idle and fast (``inline_transmit_us``). Raises at once
        for bad APDUs or an unknown reader, before anything is queued. With ``lent``, a run of
        such calls from one caller may end with the card lent to the front end
        (authd/smartcard/lending.py): ``lent(lease)`` is called before ``done``."""
        work = self._transmitter(apdus)
        self._check_reader(reader)
        lending = self.lending
        if lending.lent(reader):
            may_wait = False  # the reader's thread takes the card back first
        elif lent is not None and may_wait and not _authenticates(apdus):
            if lending.wants(reader):
                work = self._lending(reader, work, lent)
        else:
            lending.interrupt(reader)
        inline = self.settings.inline_transmit_us / 1e6 if may_wait else 0.0
        self.access.submit(reader, work, done, now_if_faster_than=inline, units=len(apdus))

    def _lending(self, reader: str, work: Callable[[PcscConnection], T],
                 lent: Callable[[call_link_pb2.CardLease], None]) -> Callable[[PcscConnection], T]:
        """``work``, then (sent at once on the link's thread, not the reader's) the card let
        go of and lent to the front end."""

        def then_lend(connection: PcscConnection) -> T:
            result = work(connection)
            if not self.access.on_reader_thread():
                connection.close()  # SCARD_LEAVE_CARD: the card stays as it is
                lease = self.lending.grant(reader)
                if lease is not None:
                    lent(lease)
            return result

        return then_lend

    def _transmitter(self, apdus: list[bytes]) -> Callable[[PcscConnection],
                                                           list[tuple[bytes, int]]]:
        self.check_apdus(apdus)
        authenticates = _authenticates(apdus)

        def work(connection: PcscConnection) -> list[tuple[bytes, int]]:
            try:
                return [connection.send_and_receive(apdu) for apdu in apdus]
            finally:
                if authenticates:  # no verified PIN or key survives into another call
                    _drop_security_state(connection)

        return work


def _authenticates(apdus: list[bytes]) -> bool:
    return any(apdu[1] in SECURITY_STATE_INS for apdu in apdus)


def _drop_security_state(connection: PcscConnection) -> None:
    """Select the PIV application again: selecting it resets its PIN-verified and
    management-key states (SP 800-73-4), and leaves whatever other application the APDUs had
    selected (ISO 7816-4: a security status belongs to the selected application). Cheaper
    than a card reset, and the connection stays for the next call."""
    select = bytes([0x00, 0xA4, 0x04, 0x00, len(PIV_AID)]) + PIV_AID
    try:
        connection.send_and_receive(select)
    except DriverError:
        connection.close(reset=True)  # the card did not answer: reset it instead


def card_signing_key(piv: PivSession, slot: Slot) -> bytes:
    """The DER SubjectPublicKeyInfo of the key in ``slot`` (the PIN verified): read from the
    slot's certificate, and only once the card has signed a fresh random challenge with the
    slot's private key that verifies with it, so a certificate written over another key (or a
    slot without its key) is never recorded as the customer's signing key."""
    name = f"{slot.value:02X}"
    try:
        certificate = piv.get_certificate(slot)
    except NoSuchObject:
        raise WrongState(f"slot {name} holds no certificate: import the certificate of its "
                         "key first, or register the card without a key slot") from None
    public_key = certificate.public_key()
    if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size == 2048:
        key_type = KeyType.RSA2048
    elif isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name in _CURVES:
        key_type = _CURVES[public_key.curve.name]
    else:
        raise WrongState(f"the certificate in slot {name} holds a key PIV cannot sign with "
                         "(RSA-2048, EC P-256 or P-384)")
    challenge = os.urandom(32)
    try:
        signature = piv.sign_digest(slot, key_type, digest(challenge, "sha256"))
    except (ApduError, NoSuchObject):
        raise WrongState(f"slot {name} holds no key that signs for its certificate") from None
    if not verify_signature(public_key, signature, challenge):
        raise WrongState(f"the key in slot {name} does not match its certificate: nothing "
                         "was registered")
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


_CURVES = {"secp256r1": KeyType.ECCP256, "secp384r1": KeyType.ECCP384}


def piv_attempts(piv: PivSession) -> int:
    """Attempts left after a success: drop the verified state, then ask the card."""
    piv.unverify_pin()
    status = piv.pin_status()
    return status.attempts_remaining if status.attempts_remaining is not None else 0
