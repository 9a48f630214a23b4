"""Proto <-> domain conversion for the token service."""

from __future__ import annotations

from authd.customer.models import BranchRegistration
from authd.enums import EnumMap
from authd.v1 import token_pb2 as pb
from devices.token import CertificateInfo, KeyInfo, KeySpec, RenewalState, SignAlgorithm
from devices.token.token import DeleteScope
from drivers.pkcs11 import TokenEvent, TokenEventKind, TokenInfo

KEY_SPEC = EnumMap("spec", {
    KeySpec.EC_P256: pb.TOKEN_KEY_SPEC_EC_P256,
    KeySpec.EC_P384: pb.TOKEN_KEY_SPEC_EC_P384,
    KeySpec.RSA_2048: pb.TOKEN_KEY_SPEC_RSA_2048,
    KeySpec.RSA_3072: pb.TOKEN_KEY_SPEC_RSA_3072,
})
ALGORITHM = EnumMap("algorithm", {
    SignAlgorithm.ECDSA_SHA256: pb.TOKEN_SIGN_ECDSA_SHA256,
    SignAlgorithm.RSA_PKCS1V15_SHA256: pb.TOKEN_SIGN_RSA_PKCS1V15_SHA256,
    SignAlgorithm.RSA_PSS_SHA256: pb.TOKEN_SIGN_RSA_PSS_SHA256,
})
RENEWAL = EnumMap("renewal", {
    RenewalState.NOT_YET_VALID: pb.TOKEN_RENEWAL_NOT_YET_VALID,
    RenewalState.VALID: pb.TOKEN_RENEWAL_VALID,
    RenewalState.RENEWABLE: pb.TOKEN_RENEWAL_RENEWABLE,
    RenewalState.EXPIRED: pb.TOKEN_RENEWAL_EXPIRED,
})
EVENT = EnumMap("kind", {
    TokenEventKind.PRESENT: pb.TokenEvent.PRESENT,
    TokenEventKind.INSERTED: pb.TokenEvent.INSERTED,
    TokenEventKind.REMOVED: pb.TokenEvent.REMOVED,
})
SCOPE = EnumMap("scope", {
    DeleteScope.KEY_PAIR: pb.TokenDeleteObjectRequest.KEY_PAIR,
    DeleteScope.CERTIFICATE: pb.TokenDeleteObjectRequest.CERTIFICATE,
})


def key_spec(value: int) -> KeySpec:
    return KEY_SPEC.from_pb(value)


def algorithm(value: int) -> SignAlgorithm | None:
    """UNSPECIFIED: the key's default algorithm."""
    return ALGORITHM.from_pb(value, None)


def scope(value: int) -> DeleteScope:
    """UNSPECIFIED: the key pair and its certificate."""
    return SCOPE.from_pb(value, DeleteScope.ALL)


def token(info: TokenInfo, attempts_left: int | None = None) -> pb.SecurityToken:
    state = info.pin_state
    left = state.attempts_remaining if attempts_left is None else attempts_left
    return pb.SecurityToken(
        serial=info.serial,
        label=info.label,
        manufacturer=info.manufacturer,
        model=info.model,
        module=info.module,
        slot_id=info.slot_id,
        flags=info.flags,
        logged_in=info.logged_in,
        pin_state=pb.TokenPinState(
            count_low=state.count_low,
            final_try=state.final_try,
            locked=state.locked,
            to_be_changed=state.to_be_changed,
            attempts_left=-1 if left is None else left,
        ),
    )


def event(ev: TokenEvent) -> pb.TokenEvent:
    return pb.TokenEvent(kind=EVENT.to_pb(ev.kind), token=token(ev.token))


def key(info: KeyInfo) -> pb.TokenKeyInfo:
    try:
        spec = KEY_SPEC.to_pb(KeySpec(info.spec))
    except ValueError:
        spec = pb.TOKEN_KEY_SPEC_UNSPECIFIED
    return pb.TokenKeyInfo(
        key_id=info.key_id,
        label=info.label,
        spec=spec,
        public_key_der=info.public_key_der,
        has_private_key=info.has_private,
        has_certificate=info.has_certificate,
        extractable=bool(info.extractable),
    )


def certificate(info: CertificateInfo) -> pb.TokenCertificateInfo:
    return pb.TokenCertificateInfo(
        key_id=info.key_id,
        label=info.label,
        subject=info.subject,
        issuer=info.issuer,
        serial_hex=format(info.serial, "x"),
        not_before=info.not_before.timestamp(),
        not_after=info.not_after.timestamp(),
        renewal=RENEWAL.to_pb(info.renewal),
        renewable_from=info.renewable_from.isoformat(),
        renewable_until=info.renewable_until.isoformat(),
        der=info.der,
    )


def registration(reg: BranchRegistration) -> pb.TokenRegistration:
    return pb.TokenRegistration(
        id=reg.id,
        institution=reg.institution,
        token_serial=reg.serial,
        customer_id=reg.customer_id,
        terminal=reg.terminal,
        operator=reg.operator,
        registered_at=reg.registered_at,
        deregistered_at=reg.deregistered_at or 0.0,
        public_key=reg.public_key,
        active=reg.active,
    )
