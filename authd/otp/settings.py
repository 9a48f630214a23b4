"""The ``[otp]`` section: the OTP center's rules and its verification engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from cryptography import x509

from authd.ratelimit import Rate, rate_problems
from authd.settings import setting


@dataclass(frozen=True)
class PskcSigner:
    """A manufacturer whose seed files are signed (RFC 6030 §7)."""

    manufacturer: str = setting(
        doc="the manufacturer's name as its files give it (<DeviceInfo><Manufacturer>)")
    certificate: str = setting(
        doc="PEM file of the X.509 certificate the manufacturer signs its files with")


@dataclass(frozen=True)
class OtpSettings:
    SECTION: ClassVar[str] = "otp"
    lockout_threshold: int = setting(
        10, "consecutive wrong codes, summed over every institution, that lock a device "
            "(DOMAIN §2, IB art. 11)")
    drift_steps: int = setting(1, "TOTP: time steps accepted either side of the clock")
    hotp_look_ahead: int = setting(10, "HOTP: counters accepted ahead of the last one")
    default_digits: int = setting(6, "digits of a newly enrolled device when not given")
    default_period: int = setting(60, "TOTP time step of a new device in seconds when not given")
    default_algorithm: Literal["SHA1", "SHA256", "SHA512"] = setting(
        "SHA1", "HMAC algorithm of a new device when not given")
    batch_max: int = setting(256, "verifications committed together at most (group commit)")
    writers: int = setting(0, "group-commit writer threads; 0: 1 on SQLite, 4 on PostgreSQL")
    engine: Literal["thread", "loop"] = setting(
        "thread", "thread: writer threads evaluate and commit batches (most verifications per "
                  "second); loop: the event loop evaluates, a helper thread commits (SQLite in "
                  "one process; lower latency at the same load)")
    batch_request_max: int = setting(
        1000, "verifications one VerifyBatch call or one VerifyStream frame may carry")
    max_in_flight: int = setting(
        4096, "verifications a server process holds at once (admitted, not yet answered); a "
              "call beyond it is answered RESOURCE_EXHAUSTED at once (0: no bound)")
    queue_max: int = setting(
        2048, "verifications waiting for one writer; one beyond it is answered "
              "RESOURCE_EXHAUSTED at once (0: no bound)")
    link_window: int = setting(
        4, "frames of verifications the native front end has in the engine at once; calls "
           "that come while that many are out wait in the front end and leave together in the "
           "next frame")
    link_empty_call: bool = setting(
        False, "the native front end serves /bench.EmptyLink/Call, an empty call sent over the "
               "engine link like a Verify and answered at once by the link's reader, never by "
               "the engine or the store: the link's own floor, for benchmarks")
    stage_timings: bool = setting(
        False, "record how long verifications spend in each stage of the engine "
               "(authd_otp_stage_seconds, a histogram per stage; authd_otp_slow_frame_seconds, "
               "the stages of each native front end's frame slower than 10 ms; for benchmarks)")
    verify_per_second: float = setting(
        200.0, "per-institution rate limit of each server process on Verify and every request "
               "of a VerifyStream (calls a second on average; 0: off)")
    verify_burst: int = setting(400, "burst allowed above verify_per_second")
    online_register_per_second: float = setting(
        2.0, "per-institution rate limit on online registrations (proof of possession)")
    online_register_burst: int = setting(30, "burst allowed above online_register_per_second")
    branch_register_per_second: float = setting(
        5.0, "per-institution rate limit on registrations at branches")
    branch_register_burst: int = setting(50, "burst allowed above branch_register_per_second")
    pskc_signers: tuple[PskcSigner, ...] = setting(
        (), "manufacturers whose PSKC seed files must be signed, each with the certificate "
            "the signature is verified against: a file naming one is imported only when "
            "its signature verifies ([[otp.pskc_signers]] tables)")
    pskc_signed_only: bool = setting(
        False, "import only seed files signed by a manufacturer of pskc_signers (an unsigned "
               "file, or one of a manufacturer without a certificate, is refused)")
    pskc_signer_ca_certificates: str = setting(
        "", "PEM file of the CA certificates every certificate of pskc_signers must chain to "
            "for its files to be imported (PSKC_SIGNER_UNTRUSTED otherwise); empty: the "
            "certificates are pinned as configured, without a chain")
    pskc_signer_revocation: bool = setting(
        False, "check each signer certificate's revocation status at every signed import "
               "(OCSP from its AIA, else the CRL of its distribution point; needs "
               "pskc_signer_ca_certificates): revoked is PSKC_SIGNER_REVOKED, no answer "
               "PSKC_SIGNER_STATUS_UNAVAILABLE")
    pskc_signer_revocation_max_age: float = setting(
        0.0, "seconds a signer certificate's revocation status answered by its CA counts for "
             "the next imports, at most until the answer's nextUpdate (0: its CA is asked "
             "at every signed import, so a certificate revoked there refuses the next file; "
             "imports are rare); not [certificate] cache_max_seconds, the bank's own "
             "customers' certificates'")
    pskc_signer_expiry_warning_days: float = setting(
        30.0, "warn at start for each certificate of pskc_signers that expires within this "
              "many days (an expired one refuses its files: PSKC_SIGNER_EXPIRED); 0: no warning")

    def problems(self) -> list[str]:
        out = rate_problems({
            "verify_per_second": Rate(self.verify_per_second, self.verify_burst),
            "online_register_per_second": Rate(self.online_register_per_second,
                                               self.online_register_burst),
            "branch_register_per_second": Rate(self.branch_register_per_second,
                                               self.branch_register_burst)})
        if not 1 <= self.lockout_threshold <= 1_000_000:
            out.append("lockout_threshold must be 1..1000000")
        if not 0 <= self.drift_steps <= 10 or not 0 <= self.hotp_look_ahead <= 1000:
            out.append("drift_steps must be 0..10 and hotp_look_ahead 0..1000")
        if self.default_digits not in (6, 7, 8):
            out.append("default_digits must be 6, 7 or 8")
        if not 10 <= self.default_period <= 300:
            out.append("default_period must be 10..300 seconds")
        if not 1 <= self.batch_max <= 10_000 or not 0 <= self.writers <= 64:
            out.append("batch_max must be 1..10000 and writers 0..64")
        if not 1 <= self.link_window <= 64:
            out.append("link_window must be 1..64")
        if not 1 <= self.batch_request_max <= 100_000:
            out.append("batch_request_max must be 1..100000")
        if not 0 <= self.max_in_flight <= 10_000_000 or not 0 <= self.queue_max <= 10_000_000:
            out.append("max_in_flight and queue_max must be 0..10000000")
        if 0 < self.max_in_flight < self.batch_request_max:
            out.append("max_in_flight must be at least batch_request_max (or 0): a full "
                       "batch could never be admitted")
        names = [s.manufacturer for s in self.pskc_signers]
        if any(not n.strip() for n in names) or len(set(names)) != len(names):
            out.append("pskc_signers: every manufacturer must be named, once")
        for signer in self.pskc_signers:
            try:
                x509.load_pem_x509_certificate(Path(signer.certificate).read_bytes())
            except (OSError, ValueError) as exc:
                out.append(f"pskc_signers: the certificate of {signer.manufacturer!r} "
                           f"({signer.certificate}) is not a readable PEM certificate: {exc}")
        if self.pskc_signer_ca_certificates:
            try:
                x509.load_pem_x509_certificates(
                    Path(self.pskc_signer_ca_certificates).read_bytes())
            except (OSError, ValueError) as exc:
                out.append(f"pskc_signer_ca_certificates ({self.pskc_signer_ca_certificates}) "
                           f"is not a readable PEM file of certificates: {exc}")
        if self.pskc_signer_revocation and not self.pskc_signer_ca_certificates:
            out.append("pskc_signer_revocation needs pskc_signer_ca_certificates: a status is "
                       "asked of the CA that issued the signer certificate")
        if not 0 <= self.pskc_signer_revocation_max_age <= 86400:
            out.append("pskc_signer_revocation_max_age must be 0..86400 seconds (0: the CA is "
                       "asked at every signed import)")
        if not 0 <= self.pskc_signer_expiry_warning_days <= 3650:
            out.append("pskc_signer_expiry_warning_days must be 0..3650")
        if self.pskc_signed_only and not self.pskc_signers:
            out.append("pskc_signed_only needs pskc_signers: no file could be imported")
        return out

    def pskc_certificates(self) -> dict[str, str]:
        """Manufacturer -> the PEM certificate its files are verified against."""
        return {s.manufacturer: Path(s.certificate).read_text() for s in self.pskc_signers}


SETTINGS = OtpSettings
