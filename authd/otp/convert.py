"""Proto <-> domain conversion for the OTP center."""

from __future__ import annotations

from authd.enums import EnumMap
from authd.otp.repository import Device
from authd.v1 import otp_pb2
from devices.otp.codes import Algorithm
from devices.otp.rules import Kind, Outcome, State
from devices.otp.seedfile import SeedFile

KIND = EnumMap("kind", {Kind.TOTP: otp_pb2.OTP_KIND_TOTP, Kind.HOTP: otp_pb2.OTP_KIND_HOTP})
ALGORITHM = EnumMap("algorithm", {Algorithm.SHA1: otp_pb2.OTP_ALGORITHM_SHA1,
                                  Algorithm.SHA256: otp_pb2.OTP_ALGORITHM_SHA256,
                                  Algorithm.SHA512: otp_pb2.OTP_ALGORITHM_SHA512})
STATE = EnumMap("state", {State.ACTIVE: otp_pb2.DEVICE_STATE_ACTIVE,
                          State.LOCKED: otp_pb2.DEVICE_STATE_LOCKED,
                          State.LOST: otp_pb2.DEVICE_STATE_REPORTED_LOST,
                          State.REPLACED: otp_pb2.DEVICE_STATE_REPLACED,
                          State.EXPIRED: otp_pb2.DEVICE_STATE_EXPIRED})
OUTCOME = EnumMap("outcome", {
    Outcome.ACCEPTED: otp_pb2.VERIFY_OUTCOME_ACCEPTED,
    Outcome.WRONG_CODE: otp_pb2.VERIFY_OUTCOME_WRONG_CODE,
    Outcome.LOCKED: otp_pb2.VERIFY_OUTCOME_LOCKED,
    Outcome.REPORTED_LOST: otp_pb2.VERIFY_OUTCOME_REPORTED_LOST,
    Outcome.NOT_REGISTERED: otp_pb2.VERIFY_OUTCOME_NOT_REGISTERED,
    Outcome.EXPIRED_OR_REPLACED: otp_pb2.VERIFY_OUTCOME_EXPIRED_OR_REPLACED,
    Outcome.REPLAYED: otp_pb2.VERIFY_OUTCOME_REPLAYED,
})
CHANNEL = EnumMap("channel", {"branch": otp_pb2.REGISTRATION_CHANNEL_BRANCH,
                              "online": otp_pb2.REGISTRATION_CHANNEL_ONLINE})


def kind_from_pb(value: int, default: Kind | None = None) -> Kind | None:
    """UNSPECIFIED gives ``default``."""
    return KIND.from_pb(value, default)


def algorithm_from_pb(value: int, default: Algorithm | None = None) -> Algorithm | None:
    """UNSPECIFIED gives ``default``."""
    return ALGORITHM.from_pb(value, default)


def status_to_pb(device: Device, attempts_left: int) -> otp_pb2.DeviceStatus:
    p = device.params
    return otp_pb2.DeviceStatus(
        serial=device.serial,
        state=STATE.to_pb(device.state),
        parameters=otp_pb2.OtpParameters(
            kind=KIND.to_pb(p.kind), digits=p.digits, period_seconds=p.period,
            algorithm=ALGORITHM.to_pb(p.algorithm),
            counter=device.last + 1 if p.kind is Kind.HOTP else 0),
        consecutive_failures=device.failures,
        attempts_left=attempts_left,
        issuer=device.issuer,
        registrations=[otp_pb2.Registration(
            institution=r.institution,
            channel=CHANNEL.to_pb_or(r.channel, otp_pb2.REGISTRATION_CHANNEL_UNSPECIFIED),
            registered_at=r.registered_at, failures_here=r.failures_here,
            customer_id=r.customer_id)
            for r in device.registrations],
        replaced_by=device.replaced_by or "",
        warranty_until=device.warranty_until,
        updated_at=device.updated_at,
    )


def seed_file_to_pb(seeds: SeedFile, dry_run: bool) -> otp_pb2.ImportDevicesResponse:
    """What a seed file imports (or would): never a seed."""
    return otp_pb2.ImportDevicesResponse(
        devices=[otp_pb2.ImportedDevice(
            key_package=r.package, key_id=r.key_id, serial=r.serial,
            parameters=otp_pb2.OtpParameters(
                kind=KIND.to_pb(r.params.kind), digits=r.params.digits,
                period_seconds=r.params.period, algorithm=ALGORITHM.to_pb(r.params.algorithm),
                counter=r.counter),
            warranty_until=r.expires, manufacturer=r.manufacturer, drift_steps=r.drift)
            for r in seeds.records],
        skipped=[otp_pb2.SkippedKeyPackage(key_package=s.package, key_id=s.key_id,
                                           serial=s.serial, reason=s.reason)
                 for s in seeds.skipped],
        dry_run=dry_run, file_sha256=seeds.digest, signature=seeds.signature.value,
        signer=seeds.signer)
