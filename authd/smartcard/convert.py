"""proto <-> domain for the smartcard service."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from authd.enums import EnumMap
from authd.smartcard.models import CardInfo, CertificateInfo, PinOutcome, PinResult, PivStatus
from authd.v1 import smartcard_pb2 as pb
from devices.errors import BadRequest
from devices.smartcard.piv import KeyType, PublicKey, Slot
from drivers.pcsc.events import EventKind, ReaderEvent, Snapshot

EVENT_KIND = EnumMap("kind", {
    EventKind.READER_ADDED: pb.ReaderEvent.READER_ADDED,
    EventKind.READER_REMOVED: pb.ReaderEvent.READER_REMOVED,
    EventKind.CARD_INSERTED: pb.ReaderEvent.CARD_INSERTED,
    EventKind.CARD_REMOVED: pb.ReaderEvent.CARD_REMOVED,
    EventKind.SERVICE_UP: pb.ReaderEvent.SERVICE_UP,
    EventKind.SERVICE_DOWN: pb.ReaderEvent.SERVICE_DOWN,
})
PIN_OUTCOME = EnumMap("outcome", {
    PinOutcome.OK: pb.PinResult.OK,
    PinOutcome.WRONG: pb.PinResult.WRONG,
    PinOutcome.BLOCKED: pb.PinResult.BLOCKED,
})


def slot_from_proto(value: int) -> Slot:
    try:
        return Slot(value)
    except ValueError:
        raise BadRequest("slot must be one of 9A, 9C, 9D, 9E") from None


def key_type_from_proto(value: int) -> KeyType:
    try:
        return KeyType(value)
    except ValueError:
        raise BadRequest("algorithm must be RSA2048, EC_P256 or EC_P384") from None


def readers_to_proto(snapshot: Snapshot) -> pb.ListReadersResponse:
    return pb.ListReadersResponse(
        service_available=snapshot.available,
        readers=[
            pb.Reader(name=name, card_present=atr is not None, atr=atr or b"")
            for name, atr in sorted(snapshot.readers.items())
        ],
    )


def event_to_proto(event: ReaderEvent) -> pb.ReaderEvent:
    return pb.ReaderEvent(kind=EVENT_KIND.to_pb(event.kind), reader=event.reader, atr=event.atr)


def card_info_to_proto(info: CardInfo) -> pb.CardInfo:
    return pb.CardInfo(
        reader=info.reader,
        atr=info.atr,
        applets=[pb.Applet(name=name, aid=aid) for name, aid in info.applets],
    )


def public_key_der(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def certificate_to_proto(slot: Slot, certificate: x509.Certificate) -> pb.PivCertificate:
    return pb.PivCertificate(
        slot=int(slot),  # type: ignore[arg-type]
        der=certificate.public_bytes(serialization.Encoding.DER),
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        not_after=certificate.not_valid_after_utc.isoformat(),
    )


def piv_status_to_proto(reader: str, status: PivStatus) -> pb.PivStatus:
    return pb.PivStatus(
        reader=reader,
        guid=status.guid,
        fascn=status.fascn,
        expiry=status.expiry,
        pin_attempts_remaining=status.pin_attempts_remaining,
        pin_blocked=status.pin_blocked,
        certificates=[_cert(info) for info in status.certificates],
    )


def _cert(info: CertificateInfo) -> pb.PivCertificate:
    return certificate_to_proto(info.slot, info.certificate)


def pin_result_to_proto(result: PinResult) -> pb.PinResult:
    return pb.PinResult(
        outcome=PIN_OUTCOME.to_pb(result.outcome), attempts_remaining=result.attempts_remaining
    )


def responses_to_proto(responses: list[tuple[bytes, int]]) -> pb.TransmitResponse:
    return pb.TransmitResponse(
        responses=[pb.ApduResponse(data=data, sw=sw) for data, sw in responses]
    )
