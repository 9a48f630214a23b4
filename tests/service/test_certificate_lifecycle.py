"""The certificate lifecycle of DOMAIN §6 through a real gRPC channel, on disk storage (the
NPKI layout): the renewal window at its edges in Korean time, the 7-day request and the 7-day
cancellation, reissue with additional authentication, the incident list, another bank's
certificate, expiry notices; checked by OpenSSL (verify, pkcs8 with SEED) and by OCSP."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from authd.certificate.feature import EXPIRING, CertificateFeature
from authd.errors import details_of
from authd.metrics import REGISTRY
from authd.v1 import certificate_pb2 as cpb
from authd.v1 import policy_pb2 as ppb
from authd.v1 import policy_pb2_grpc
from devices.certificate.validity import KST
from tests.certificate_env import CaEnv, Teller, ca_env, use_clock

PASSWORD = "hong-gil-dong 2026!"
ISSUED = dt.datetime(2026, 3, 10, 9, 0, 0, tzinfo=KST)  # expires 2027-03-10 23:59:59 KST


@pytest.fixture
def ca(tmp_path: Path) -> Iterator[CaEnv]:
    with ca_env(tmp_path) as env:
        yield env


@pytest.fixture
def usb(tmp_path: Path) -> Path:
    root = tmp_path / "usb"
    root.mkdir()
    return root


def start(server: Callable[..., Any], ca: CaEnv, usb: Path, store_url: str | None = None,
          **more: Any) -> Any:
    srv = server(store_url, certificate=ca.settings(disk_roots=[str(usb)], **more))
    use_clock(srv, ca.clock)
    return srv


def disk(removable: bool = True, password: str = PASSWORD) -> dict[str, Any]:
    return {"disk": cpb.DiskStorage(disk="usb", password=password, removable=removable)}


def code(err: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    return err.code(), details_of(err).reason


def test_disk_certificate_is_npki_layout_openssl_reads_it(
        server: Callable[..., Any], ca: CaEnv, usb: Path, tmp_path: Path) -> None:
    teller = Teller(start(server, ca, usb))
    cert = teller.issue(disk())
    assert cert.storage == cpb.STORAGE_LOCATION_REMOVABLE_DISK
    folder = Path(cert.location)
    assert folder.parent.parent.parent == usb / "NPKI"
    assert folder.parent.name == "USER" and folder.parent.parent.name == "yessign"
    assert (folder / "signCert.der").read_bytes() == cert.der
    assert (folder / "signPri.key").stat().st_mode & 0o077 == 0
    # OpenSSL decrypts the PBES2 / PBKDF2 / SEED-CBC key with the certificate password ...
    out = subprocess.run(["openssl", "pkcs8", "-inform", "DER", "-in", str(folder / "signPri.key"),
                          "-passin", f"pass:{PASSWORD}", "-provider", "legacy", "-provider",
                          "default"], capture_output=True)
    assert out.returncode == 0, out.stderr
    key = serialization.load_pem_private_key(out.stdout, None)
    certificate = x509.load_der_x509_certificate(cert.der)
    assert key.public_key() == certificate.public_key()
    # ... and refuses a wrong one
    wrong = subprocess.run(["openssl", "pkcs8", "-inform", "DER", "-in",
                            str(folder / "signPri.key"), "-passin", "pass:wrong-password-1!",
                            "-provider", "legacy", "-provider", "default"], capture_output=True)
    assert wrong.returncode != 0
    pem = tmp_path / "leaf.pem"
    pem.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    verified = subprocess.run(["openssl", "verify", "-CAfile", str(ca.ca.ca_pem), str(pem)],
                              capture_output=True, text=True)
    assert verified.returncode == 0 and ": OK" in verified.stdout


def test_a_weak_password_or_an_unknown_disk_writes_nothing(
        server: Callable[..., Any], ca: CaEnv, usb: Path) -> None:
    teller = Teller(start(server, ca, usb))
    request_id = teller.open()
    teller.steps(request_id)
    with pytest.raises(grpc.RpcError) as weak:
        teller.certs.CompleteIssuance(cpb.CompleteIssuanceRequest(
            request_id=request_id, **disk(password="short")))
    assert weak.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as unknown:
        teller.certs.CompleteIssuance(cpb.CompleteIssuanceRequest(
            request_id=request_id, disk=cpb.DiskStorage(disk="/etc", password=PASSWORD)))
    assert code(unknown.value) == (grpc.StatusCode.NOT_FOUND, "UNKNOWN_DISK")
    assert list(usb.iterdir()) == [] and not ca.ca.issued
    # the request is still open and completes afterwards
    assert teller.certs.CompleteIssuance(cpb.CompleteIssuanceRequest(
        request_id=request_id, **disk())).status == cpb.CERTIFICATE_STATUS_ACTIVE


def test_steps_in_order_and_the_security_means_is_checked_by_the_otp_center(
        server: Callable[..., Any], ca: CaEnv, usb: Path) -> None:
    teller = Teller(start(server, ca, usb))
    request_id = teller.open()
    with pytest.raises(grpc.RpcError) as early:
        teller.certs.CompleteIssuance(cpb.CompleteIssuanceRequest(request_id=request_id,
                                                                  **disk()))
    assert code(early.value) == (grpc.StatusCode.FAILED_PRECONDITION,
                                 "ISSUANCE_STEP_OUT_OF_ORDER")
    teller.certs.AdvanceIssuance(cpb.AdvanceIssuanceRequest(
        request_id=request_id, step=cpb.ISSUANCE_STEP_IDENTITY, operator="kim",
        identity_document="passport"))
    with pytest.raises(grpc.RpcError) as wrong:
        teller.certs.AdvanceIssuance(cpb.AdvanceIssuanceRequest(
            request_id=request_id, step=cpb.ISSUANCE_STEP_SECURITY_MEANS, operator="kim",
            otp_serial=teller.otp.serial, otp_code="000000"))
    assert code(wrong.value) == (grpc.StatusCode.PERMISSION_DENIED, "SECURITY_MEANS_REFUSED")
    state = teller.certs.GetIssuance(cpb.GetIssuanceRequest(request_id=request_id))
    assert state.step == cpb.ISSUANCE_STEP_IDENTITY and state.state == cpb.ISSUANCE_STATE_OPEN
    teller.certs.AdvanceIssuance(cpb.AdvanceIssuanceRequest(
        request_id=request_id, step=cpb.ISSUANCE_STEP_SECURITY_MEANS, operator="kim",
        otp_serial=teller.otp.serial, otp_code=teller.otp.press()))


@pytest.mark.parametrize(("moment", "renewable"), [
    (dt.datetime(2027, 1, 8, 0, 0, 0, tzinfo=KST), False),  # a day before the window
    (dt.datetime(2027, 1, 8, 23, 59, 59, tzinfo=KST), False),  # its last second before
    (dt.datetime(2027, 1, 9, 0, 0, 0, tzinfo=KST), True),  # the first second: 60 days before
    (dt.datetime(2027, 3, 10, 23, 59, 59, tzinfo=KST), True),  # 23:59:59 on the expiry day
    (dt.datetime(2027, 3, 11, 0, 0, 0, tzinfo=KST), False),  # the second after: reissue only
])
def test_renewal_window_edges_in_korean_time(server: Callable[..., Any], ca: CaEnv, usb: Path,
                                             moment: dt.datetime, renewable: bool) -> None:
    teller = Teller(start(server, ca, usb))
    ca.clock.set(ISSUED)
    old = teller.issue(disk())
    assert dt.datetime.fromtimestamp(old.not_after, KST) == dt.datetime(
        2027, 3, 10, 23, 59, 59, tzinfo=KST)
    ca.clock.set(moment)
    shown = teller.certs.GetCertificate(cpb.GetCertificateRequest(serial=old.serial))
    if not renewable:
        with pytest.raises(grpc.RpcError) as refused:
            teller.certs.RenewCertificate(cpb.RenewCertificateRequest(serial=old.serial,
                                                                      **disk()))
        assert code(refused.value) == (grpc.StatusCode.FAILED_PRECONDITION,
                                       "OUTSIDE_RENEWAL_WINDOW")
        assert shown.renewal in (cpb.RENEWAL_STATE_VALID, cpb.RENEWAL_STATE_EXPIRED)
        after = teller.certs.GetCertificate(cpb.GetCertificateRequest(serial=old.serial))
        assert after.status in (cpb.CERTIFICATE_STATUS_ACTIVE, cpb.CERTIFICATE_STATUS_EXPIRED)
        return
    assert shown.renewal == cpb.RENEWAL_STATE_RENEWABLE
    new = teller.certs.RenewCertificate(cpb.RenewCertificateRequest(serial=old.serial, **disk()))
    assert new.serial != old.serial and new.status == cpb.CERTIFICATE_STATUS_ACTIVE
    assert dt.datetime.fromtimestamp(new.not_after, KST).date() == dt.date(
        moment.year + 1, moment.month, moment.day)
    before = teller.certs.GetCertificate(cpb.GetCertificateRequest(serial=old.serial))
    assert before.status == cpb.CERTIFICATE_STATUS_REVOKED and before.replaced_by == new.serial
    assert ca.ca.issued[int(old.serial, 16)].reason is x509.ReasonFlags.superseded


def test_validity_at_the_expiry_second_with_the_responder_at_that_time(
        server: Callable[..., Any], ca: CaEnv, usb: Path) -> None:
    """The OCSP responder runs under libfaketime at the test's moment, so its thisUpdate and
    nextUpdate are what a responder would say then."""
    teller = Teller(start(server, ca, usb))
    ca.clock.set(ISSUED)
    cert = teller.issue(disk())
    last = dt.datetime(2027, 3, 10, 23, 59, 59, tzinfo=KST)
    ca.clock.set(last)
    ca.start_ocsp(fake_time=last.astimezone(dt.UTC).strftime("@%Y-%m-%d %H:%M:%S"))
    check = teller.backend.CheckCertificate(cpb.CheckCertificateRequest(certificate=cert.der))
    assert check.verdict == cpb.VERDICT_VALID and check.source == "ocsp"
    assert abs(check.this_update - last.timestamp()) < 120
    ca.clock.set(last + dt.timedelta(seconds=1))
    check = teller.backend.CheckCertificate(cpb.CheckCertificateRequest(certificate=cert.der))
    assert check.verdict == cpb.VERDICT_EXPIRED and not check.allowed
    assert "reissued" in check.message


def test_cancellation_within_seven_days_revokes_and_refunds(
        server: Callable[..., Any], ca: CaEnv, usb: Path, store_url: str) -> None:
    teller = Teller(start(server, ca, usb, store_url))
    ca.clock.set(ISSUED)
    first = teller.issue(disk(), kind="universal")
    second = teller.issue(disk(), kind="universal", customer="C-1002")
    assert first.fee_krw == 4400
    ca.clock.set(ISSUED + dt.timedelta(days=7) - dt.timedelta(seconds=1))
    done = teller.certs.CancelCertificate(cpb.CancelCertificateRequest(serial=first.serial,
                                                                       operator="kim"))
    assert done.fee_krw == 4400 and done.refund_krw == 4400
    assert done.certificate.status == cpb.CERTIFICATE_STATUS_REVOKED
    assert done.certificate.refund_krw == 4400
    assert ca.ca.issued[int(first.serial, 16)].reason is x509.ReasonFlags.cessation_of_operation
    ca.clock.set(ISSUED + dt.timedelta(days=7, seconds=1))
    with pytest.raises(grpc.RpcError) as late:
        teller.certs.CancelCertificate(cpb.CancelCertificateRequest(serial=second.serial,
                                                                    operator="kim"))
    assert code(late.value) == (grpc.StatusCode.FAILED_PRECONDITION, "CANCELLATION_PERIOD_OVER")
    kept = teller.certs.GetCertificate(cpb.GetCertificateRequest(serial=second.serial))
    assert kept.status == cpb.CERTIFICATE_STATUS_ACTIVE and kept.refund_krw == -1
    assert ca.ca.issued[int(second.serial, 16)].status == "valid"


def test_an_issuance_request_not_completed_in_seven_days_is_cancelled(
        server: Callable[..., Any], ca: CaEnv, usb: Path) -> None:
    srv = start(server, ca, usb)
    teller = Teller(srv)
    ca.clock.set(ISSUED)
    request_id = teller.open()
    ca.clock.set(ISSUED + dt.timedelta(days=7))
    with pytest.raises(grpc.RpcError) as expired:
        teller.steps(request_id)
    assert code(expired.value) == (grpc.StatusCode.FAILED_PRECONDITION,
                                   "ISSUANCE_REQUEST_EXPIRED")
    srv.app.feature(CertificateFeature).refresh()  # the sweep records it
    shown = teller.certs.GetIssuance(cpb.GetIssuanceRequest(request_id=request_id))
    assert shown.state == cpb.ISSUANCE_STATE_EXPIRED and "CA art. 6(3)" in shown.reason
    # the CA keeps the same rule for its application
    app = next(iter(ca.ca.applications.values()))
    assert app.state in ("open", "cancelled")
    from simulators.certificate.authority import CaRefusal

    with pytest.raises(CaRefusal) as refused:
        ca.ca.enroll(app.reference, app.code, b"")
    assert refused.value.code == "APPLICATION_EXPIRED"


def test_reissue_needs_the_branch_number_and_replaces_the_old_certificate(
        server: Callable[..., Any], ca: CaEnv, usb: Path) -> None:
    teller = Teller(start(server, ca, usb))
    old = teller.issue(disk())
    proof = cpb.AdditionalProof(kind=cpb.AdditionalProof.BRANCH_NUMBER, value="00000000")
    with pytest.raises(grpc.RpcError) as none:
        teller.open(reissue=True, replaces_serial=old.serial, proof=proof)
    assert code(none.value) == (grpc.StatusCode.PERMISSION_DENIED,
                                "ADDITIONAL_AUTHENTICATION_FAILED")
    with pytest.raises(grpc.RpcError) as no_proof:
        teller.open(reissue=True, replaces_serial=old.serial)
    assert no_proof.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    sms = cpb.AdditionalProof(kind=cpb.AdditionalProof.SMS, value="123456")
    with pytest.raises(grpc.RpcError) as unavailable:
        teller.open(reissue=True, replaces_serial=old.serial, proof=sms)
    assert code(unavailable.value)[1] == "ADDITIONAL_AUTHENTICATION_UNAVAILABLE"
    number = teller.certs.IssueOneTimeNumber(cpb.IssueOneTimeNumberRequest(
        customer_ref="C-1001", operator="kim")).number
    assert len(number) == 8 and number.isdigit()
    wrong = f"{(int(number) + 1) % 10**8:08d}"
    with pytest.raises(grpc.RpcError) as mistyped:
        teller.open(reissue=True, replaces_serial=old.serial,
                    proof=cpb.AdditionalProof(kind=cpb.AdditionalProof.BRANCH_NUMBER,
                                              value=wrong))
    assert "2 attempt(s) left" in (mistyped.value.details() or "")
    request_id = teller.open(reissue=True, replaces_serial=old.serial,
                             proof=cpb.AdditionalProof(kind=cpb.AdditionalProof.BRANCH_NUMBER,
                                                       value=number))
    teller.steps(request_id)
    new = teller.certs.CompleteIssuance(cpb.CompleteIssuanceRequest(request_id=request_id,
                                                                    **disk()))
    replaced = teller.certs.GetCertificate(cpb.GetCertificateRequest(serial=old.serial))
    assert replaced.status == cpb.CERTIFICATE_STATUS_REVOKED and replaced.replaced_by == new.serial
    # the number was used up
    with pytest.raises(grpc.RpcError) as used:
        teller.open(reissue=True, replaces_serial=new.serial,
                    proof=cpb.AdditionalProof(kind=cpb.AdditionalProof.BRANCH_NUMBER,
                                              value=number))
    assert "no one-time number" in (used.value.details() or "")


def test_a_device_on_the_incident_list_is_refused_at_every_bank(
        server: Callable[..., Any], ca: CaEnv, usb: Path) -> None:
    """The shared incident list (PolicyService.ReportIncident, fed by any institution)."""
    srv = start(server, ca, usb)
    teller = Teller(srv)
    policy = policy_pb2_grpc.PolicyServiceStub(srv.channel("bank-b", "backend", "ib-b"))
    policy.ReportIncident(ppb.ReportIncidentRequest(
        device=ppb.DeviceInfo(mac="00-1A-2B-3C-4D-5E"), reason="used in a phishing incident"))
    info = ppb.DeviceInfo(mac="00:1a:2b:3c:4d:5e", ip="203.0.113.7")
    with pytest.raises(grpc.RpcError) as refused:
        teller.open(device_info=info)
    assert code(refused.value) == (grpc.StatusCode.PERMISSION_DENIED, "DEVICE_ON_INCIDENT_LIST")
    assert details_of(refused.value).metadata["kinds"] == "mac"
    assert not ca.ca.applications
    with pytest.raises(grpc.RpcError) as bad:
        teller.open(device_info=ppb.DeviceInfo(mac="not a mac"))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert teller.open(device_info=ppb.DeviceInfo(mac="00:1a:2b:3c:4d:5f", ip="203.0.113.7"))


def test_another_banks_certificate_registered_with_additional_authentication(
        server: Callable[..., Any], ca: CaEnv, usb: Path) -> None:
    srv = start(server, ca, usb)
    bank_a, bank_b = Teller(srv), Teller(srv, "bank-b")
    cert = bank_a.issue(disk())
    with pytest.raises(grpc.RpcError) as hidden:
        bank_b.backend.GetCertificate(cpb.GetCertificateRequest(serial=cert.serial))
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    number = bank_b.certs.IssueOneTimeNumber(cpb.IssueOneTimeNumberRequest(
        customer_ref="B-77", operator="lee")).number
    registered = bank_b.backend.RegisterExternalCertificate(
        cpb.RegisterExternalCertificateRequest(
            customer_ref="B-77", certificate=cert.der, storage=cpb.STORAGE_LOCATION_DISK,
            proof=cpb.AdditionalProof(kind=cpb.AdditionalProof.BRANCH_NUMBER, value=number),
            operator="ib"))
    assert registered.origin == "registered" and registered.customer_ref == "B-77"
    mine = bank_b.backend.ListCustomerCertificates(
        cpb.ListCustomerCertificatesRequest(customer_ref="B-77")).certificates
    assert [c.serial for c in mine] == [cert.serial]
    assert not bank_a.backend.ListCustomerCertificates(
        cpb.ListCustomerCertificatesRequest(customer_ref="B-77")).certificates


def test_expiry_notices_per_institution_as_a_query_and_a_metric(
        server: Callable[..., Any], ca: CaEnv, usb: Path) -> None:
    srv = start(server, ca, usb)
    bank_a, bank_c = Teller(srv), Teller(srv, "bank-c")
    ca.clock.set(ISSUED)
    soon = bank_a.issue(disk())
    ca.clock.set(ISSUED + dt.timedelta(days=200))
    bank_a.issue(disk(), customer="C-2")  # expires later
    ca.clock.set(dt.datetime(2027, 2, 1, 12, 0, tzinfo=KST))  # inside the first's window
    listed = bank_a.backend.ListExpiringCertificates(cpb.ListExpiringCertificatesRequest())
    assert [c.serial for c in listed.certificates] == [soon.serial]
    assert listed.certificates[0].renewal == cpb.RENEWAL_STATE_RENEWABLE
    assert not bank_c.backend.ListExpiringCertificates(
        cpb.ListExpiringCertificatesRequest()).certificates
    srv.app.feature(CertificateFeature).refresh()
    assert EXPIRING.labels(institution="bank-a")._value.get() == 1
    assert REGISTRY.get_sample_value("authd_certificates_expiring",
                                     {"institution": "bank-c"}) is None
