"""The pure certificate rules: validity and renewal in Korean time, issuance requests,
cancellation, the NPKI key file, OCSP and CRL judgement, chains and the cache."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from authd.certificate.reliance import RevocationChecker
from authd.certificate.settings import CertificateSettings
from devices.certificate import npki
from devices.certificate.chain import ChainError, build_chain
from devices.certificate.lifecycle import (
    IssuanceRequest,
    IssuanceStep,
    RequestKind,
    RequestState,
    advance,
    cancellation,
    request_deadline,
)
from devices.certificate.reliance import Verdict
from devices.certificate.revocation import Revocation, RevocationError, judge_crl, judge_ocsp
from devices.certificate.validity import KST, expiry_day, validity_period
from devices.errors import BadRequest, NotPermitted, WrongState
from simulators.certificate.authority import CertificateAuthority
from tests.certificate_env import MovableClock

NOW = dt.datetime(2026, 6, 1, 3, 0, tzinfo=dt.UTC)


def test_validity_is_one_year_to_the_last_second_of_the_korean_day() -> None:
    start, end = validity_period(dt.datetime(2026, 3, 10, 23, 30, tzinfo=KST))
    assert end.astimezone(KST) == dt.datetime(2027, 3, 10, 23, 59, 59, tzinfo=KST)
    # 00:30 KST on 11 March is still 10 March in UTC: the Korean date decides
    _, end = validity_period(dt.datetime(2026, 3, 10, 15, 30, tzinfo=dt.UTC))
    assert end.astimezone(KST).date() == dt.date(2027, 3, 11)
    assert expiry_day(dt.datetime(2028, 2, 29, 12, tzinfo=KST)) == dt.date(2029, 2, 28)
    assert start.microsecond == 0


def _request(created: dt.datetime) -> IssuanceRequest:
    return IssuanceRequest("r1", "bank-a", "C-1", "banking", RequestKind.ISSUE,
                           RequestState.OPEN, IssuanceStep.TYPE, created,
                           request_deadline(created))


def test_steps_go_in_order_within_seven_days() -> None:
    q = _request(NOW)
    with pytest.raises(WrongState, match="next is identity"):
        advance(q, IssuanceStep.SECURITY_MEANS, NOW)
    q = advance(q, IssuanceStep.IDENTITY, NOW + dt.timedelta(days=6, hours=23))
    assert q.step is IssuanceStep.IDENTITY
    with pytest.raises(WrongState) as late:
        advance(q, IssuanceStep.SECURITY_MEANS, NOW + dt.timedelta(days=7))
    assert late.value.reason == "ISSUANCE_REQUEST_EXPIRED"
    assert q.state_at(NOW + dt.timedelta(days=7)) is RequestState.EXPIRED


def test_cancellation_refund_in_the_seven_days_only() -> None:
    refund = cancellation(NOW, NOW + dt.timedelta(days=7), 4400, deduction_krw=400)
    assert refund.refunded_krw == 4000
    with pytest.raises(WrongState):
        cancellation(NOW, NOW + dt.timedelta(days=7, seconds=1), 4400)


def test_npki_key_file_round_trip_and_wrong_password() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    data = npki.encrypt_private_key(key, "pass word 12!", iterations=1000)
    back = npki.decrypt_private_key(data, "pass word 12!")
    assert back.public_key() == key.public_key()  # type: ignore[union-attr]
    with pytest.raises(NotPermitted):
        npki.decrypt_private_key(data, "pass word 13!")
    with pytest.raises(BadRequest):
        npki.decrypt_private_key(b"\x30\x03\x02\x01\x00", "x")
    assert npki.user_directory("yessign", "CN=Hong()0001,O=yessign,C=KR")[-1] == \
        "cn=hong()0001,o=yessign,c=kr"
    with pytest.raises(BadRequest):
        npki.user_directory("yessign", "CN=../../etc")
    with pytest.raises(BadRequest):
        npki.check_password("onlyletters")


def _leaf(ca: CertificateAuthority) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])).sign(key, hashes.SHA256())
    app = ca.register({"name": "Hong"}, "banking")
    return ca.enroll(app.reference, app.code, csr.public_bytes(serialization.Encoding.DER))


def _ocsp_answer(ca: CertificateAuthority, cert: x509.Certificate, nonce: bytes,
                 signer: CertificateAuthority | None = None,
                 revoked: bool = False, next_update: dt.datetime | None = None) -> bytes:
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=cert, issuer=ca.certificate, algorithm=hashes.SHA1(),
        cert_status=ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
        this_update=NOW, next_update=next_update or NOW + dt.timedelta(hours=1),
        revocation_time=NOW if revoked else None,
        revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
    )
    by = signer or ca  # another CA's responder forges the answer
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, by.ocsp_certificate
                                   ).certificates([by.ocsp_certificate]).add_extension(
        x509.OCSPNonce(nonce), critical=False)
    return builder.sign(by.ocsp_key, hashes.SHA256()).public_bytes(
        serialization.Encoding.DER)


def test_ocsp_answers_are_judged(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path, clock=lambda: NOW)
    cert = _leaf(ca)
    good = judge_ocsp(_ocsp_answer(ca, cert, b"n"), cert, ca.certificate, b"n", NOW)
    assert good.state is Revocation.GOOD and good.next_update == NOW + dt.timedelta(hours=1)
    bad = judge_ocsp(_ocsp_answer(ca, cert, b"n", revoked=True), cert, ca.certificate, b"n", NOW)
    assert bad.state is Revocation.REVOKED and bad.reason is x509.ReasonFlags.key_compromise
    with pytest.raises(RevocationError, match="not signed"):
        judge_ocsp(_ocsp_answer(ca, cert, b"n",
                                signer=CertificateAuthority(tmp_path / "x", clock=lambda: NOW)),
                   cert, ca.certificate, b"n", NOW)
    with pytest.raises(RevocationError, match="nonce"):
        judge_ocsp(_ocsp_answer(ca, cert, b"n"), cert, ca.certificate, b"other", NOW)
    with pytest.raises(RevocationError, match="stale"):
        judge_ocsp(_ocsp_answer(ca, cert, b"n", next_update=NOW + dt.timedelta(minutes=1)),
                   cert, ca.certificate, b"n", NOW + dt.timedelta(hours=1))
    other = _leaf(ca)
    with pytest.raises(RevocationError, match="does not answer"):
        judge_ocsp(_ocsp_answer(ca, cert, b"n"), other, ca.certificate, b"n", NOW)


def test_crl_judgement_and_chains(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path / "a", clock=lambda: NOW)
    stranger = CertificateAuthority(tmp_path / "b", clock=lambda: NOW)
    cert = _leaf(ca)
    ca.suspend(cert.serial_number)
    crl = ca.crl().public_bytes(serialization.Encoding.DER)
    assert judge_crl(crl, cert, ca.certificate, NOW).state is Revocation.SUSPENDED
    with pytest.raises(RevocationError):
        judge_crl(stranger.crl().public_bytes(serialization.Encoding.DER), cert,
                  ca.certificate, NOW)
    assert build_chain(cert, [ca.certificate], [], NOW).issuer == ca.certificate
    with pytest.raises(ChainError):
        build_chain(cert, [stranger.certificate], [], NOW)


def test_the_cache_holds_until_next_update_then_asks_again(tmp_path: Path) -> None:
    clock = MovableClock()
    clock.set(NOW)
    ca = CertificateAuthority(tmp_path, clock=clock, ocsp_url="http://ocsp.invalid/")
    cert = _leaf(ca)
    asked: list[bytes] = []

    def post(url: str, request: bytes, timeout: float) -> bytes:
        asked.append(request)
        nonce = ocsp.load_der_ocsp_request(request).extensions.get_extension_for_class(
            x509.OCSPNonce).value.nonce
        return _ocsp_answer(ca, cert, nonce, revoked=len(asked) > 1)

    def no_crl(url: str, timeout: float) -> bytes:
        raise AssertionError("the CRL is not needed")

    checker = RevocationChecker(CertificateSettings(), [ca.certificate], clock, post=post,
                                fetch=no_crl)
    der = cert.public_bytes(serialization.Encoding.DER)
    assert checker.check(der).verdict is Verdict.VALID
    clock.set(NOW + dt.timedelta(minutes=59))
    assert checker.fresh(der) and checker.check(der).verdict is Verdict.VALID
    assert len(asked) == 1
    clock.set(NOW + dt.timedelta(minutes=61))
    assert not checker.fresh(der)
    assert checker.check(der).verdict is Verdict.REVOKED and len(asked) == 2
