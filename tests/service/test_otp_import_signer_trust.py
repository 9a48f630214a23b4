"""The signer certificates of ``[[otp.pskc_signers]]`` judged before a signed seed file counts:
an expired or not yet valid certificate refuses its files, one that does not chain to ``[otp]
pskc_signer_ca_certificates`` too, and with ``pskc_signer_revocation`` one revoked at its CA
(OCSP by ``openssl ocsp``), also at a running node that imported its files before; a
certificate about to expire is announced at start. Nothing is
written when a file is refused, dry run or not, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from prometheus_client import generate_latest

from authd.certificate.settings import CertificateSettings
from authd.errors import details_of
from authd.metrics import REGISTRY
from authd.settings import ConfigError
from authd.v1 import otp_pb2, otp_pb2_grpc
from tests.certificate_env import ca_env
from tests.conftest import make_config
from tests.pskc_signing import Signer, TestCa, hotp_key, pskc_file
from tests.service.test_otp_import_signed import KEY, import_file, refused, store_state

O = otp_pb2  # noqa: E741
DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def ca() -> TestCa:
    return TestCa()


def _center(server, store_url: str | None, signer: Signer, tmp_path: Path, **otp):
    cert = signer.write_certificate(tmp_path)
    srv = server(store_url=store_url, otp={
        "pskc_signers": [{"manufacturer": signer.name, "certificate": str(cert)}], **otp})
    return srv, otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "branch", "teller"))


def _signed(signer: Signer, serial: str) -> bytes:
    return pskc_file(hotp_key(serial, signer.name), signer=signer, key=KEY)


@pytest.mark.parametrize(("valid_from", "valid_until", "reason", "words"), [
    (-400 * DAY, -DAY, "PSKC_SIGNER_EXPIRED", "expired at"),
    (DAY, 400 * DAY, "PSKC_SIGNER_NOT_YET_VALID", "is valid only from"),
])
@pytest.mark.parametrize("dry_run", [False, True])
def test_a_file_signed_under_a_certificate_out_of_its_validity_is_refused(
        server, store_url, ca, tmp_path, valid_from, valid_until, reason, words, dry_run):
    signer = ca.signer("Acme", valid_from=valid_from, valid_until=valid_until)
    srv, branch = _center(server, store_url, signer, tmp_path)
    before = store_state(srv)
    err = refused(branch, _signed(signer, "ACME-0101"), pre_shared_key=KEY, dry_run=dry_run)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
    info = details_of(err)
    assert info.reason == reason and info.metadata["manufacturer"] == "Acme"
    assert words in err.details() and "nothing was imported" in err.details()
    assert store_state(srv) == before


def test_a_certificate_expiring_soon_is_announced_at_start(server, ca, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="authd.otp.feature")
    soon = ca.signer("Soon Corp", valid_until=10 * DAY)
    later = ca.signer("Later Corp", valid_until=100 * DAY)
    certs = [{"manufacturer": s.name, "certificate": str(s.write_certificate(tmp_path))}
             for s in (soon, later)]
    srv = server(otp={"pskc_signers": certs})
    warned = [r.getMessage() for r in caplog.records if "PSKC signing certificate" in r.message]
    assert len(warned) == 1 and "'Soon Corp' expires at" in warned[0], warned
    assert "in 9 day(s)" in warned[0] or "in 10 day(s)" in warned[0]
    metrics = generate_latest(REGISTRY).decode()
    assert 'authd_otp_pskc_signer_not_after_seconds{manufacturer="Later Corp"}' in metrics
    # Still imported until it expires.
    branch = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "branch", "teller"))
    assert import_file(branch, _signed(soon, "SOON-0001"), pre_shared_key=KEY).signature == \
        "verified"
    caplog.clear()
    server(otp={"pskc_signers": certs, "pskc_signer_expiry_warning_days": 5})
    assert not [r for r in caplog.records if "PSKC signing certificate" in r.message]


def test_a_signer_certificate_must_chain_to_the_configured_ca(server, store_url, ca, tmp_path):
    signer = ca.signer("Acme")
    other = TestCa()
    wrong = tmp_path / "other-ca.pem"
    wrong.write_text(other.certificate_pem())
    srv, branch = _center(server, store_url, signer, tmp_path,
                          pskc_signer_ca_certificates=str(wrong))
    before = store_state(srv)
    err = refused(branch, _signed(signer, "ACME-0201"), pre_shared_key=KEY)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
    assert details_of(err).reason == "PSKC_SIGNER_UNTRUSTED"
    assert "pskc_signer_ca_certificates" in err.details()
    assert store_state(srv) == before

    right = tmp_path / "ca.pem"
    right.write_text(ca.certificate_pem())
    srv, branch = _center(server, store_url, signer, tmp_path,
                          pskc_signer_ca_certificates=str(right))
    assert import_file(branch, _signed(signer, "ACME-0202"), pre_shared_key=KEY).signer == "Acme"


def _issued_signer(env, manufacturer: str) -> tuple[Signer, int]:
    """A signing certificate of the CA simulator (with its OCSP responder in the AIA)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, manufacturer)]))
           .sign(key, hashes.SHA256()))
    app = env.ca.register({"name": manufacturer}, "corporate")
    cert = env.ca.enroll(app.reference, app.code, csr.public_bytes(serialization.Encoding.DER))
    return Signer(manufacturer, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), cert.public_bytes(serialization.Encoding.PEM).decode()), \
        cert.serial_number


def test_a_revoked_signer_certificate_refuses_its_files(server, tmp_path):
    with ca_env(tmp_path / "ca") as env:
        signer, serial = _issued_signer(env, "Acme")
        srv, branch = _center(server, None, signer, tmp_path,
                              pskc_signer_ca_certificates=str(env.ca.ca_pem),
                              pskc_signer_revocation=True)
        assert import_file(branch, _signed(signer, "ACME-0301"),
                           pre_shared_key=KEY).signer == "Acme"

        env.ca.revoke(serial, x509.ReasonFlags.key_compromise)
        assert env.responder is not None
        env.responder.kick()
        # A node started now asks the responder (a running one too: see below).
        srv, branch = _center(server, None, signer, tmp_path,
                              pskc_signer_ca_certificates=str(env.ca.ca_pem),
                              pskc_signer_revocation=True)
        before = store_state(srv)
        err = refused(branch, _signed(signer, "ACME-0302"), pre_shared_key=KEY)
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
        assert details_of(err).reason == "PSKC_SIGNER_REVOKED"
        assert "revoked at its CA" in err.details()
        assert store_state(srv) == before

        env.stop_ocsp()
        env.server.stop()  # no OCSP answer and no CRL either
        srv, branch = _center(server, None, signer, tmp_path,
                              pskc_signer_ca_certificates=str(env.ca.ca_pem),
                              pskc_signer_revocation=True)
        err = refused(branch, _signed(signer, "ACME-0303"), pre_shared_key=KEY)
        assert err.code() == grpc.StatusCode.UNAVAILABLE, err.details()
        assert details_of(err).reason == "PSKC_SIGNER_STATUS_UNAVAILABLE"


def test_a_running_node_refuses_a_signer_revoked_since_its_last_import(server, tmp_path):
    """``[otp] pskc_signer_revocation_max_age`` (0 by default: the CA is asked at every signed
    import) bounds the answer a node keeps, not ``[certificate] cache_max_seconds``: the same
    node that imported a file of the signer refuses the next one once its CA revoked it. A
    node told to keep answers an hour goes on with the good answer it has."""
    with ca_env(tmp_path / "ca") as env:
        signer, serial = _issued_signer(env, "Acme")
        trust = {"pskc_signer_ca_certificates": str(env.ca.ca_pem),
                 "pskc_signer_revocation": True}
        srv, branch = _center(server, None, signer, tmp_path, **trust)
        _, kept_branch = _center(server, None, signer, tmp_path, **trust,
                                 pskc_signer_revocation_max_age=3600)
        assert srv.config.settings(CertificateSettings).cache_max_seconds == 3600
        for stub, file in ((branch, "ACME-0401"), (kept_branch, "ACME-0411")):
            assert import_file(stub, _signed(signer, file), pre_shared_key=KEY).signer == "Acme"

        env.ca.revoke(serial, x509.ReasonFlags.key_compromise)
        assert env.responder is not None
        env.responder.kick()
        before = store_state(srv)
        err = refused(branch, _signed(signer, "ACME-0402"), pre_shared_key=KEY)
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
        assert details_of(err).reason == "PSKC_SIGNER_REVOKED"
        assert "revoked at its CA" in err.details()
        assert store_state(srv) == before
        assert import_file(kept_branch, _signed(signer, "ACME-0412"),
                           pre_shared_key=KEY).signer == "Acme"


@pytest.mark.parametrize("seconds", [-1, 86401])
def test_the_revocation_max_age_is_bounded(tmp_path, ca, seconds):
    cert = ca.signer("Acme").write_certificate(tmp_path)
    with pytest.raises(ConfigError, match="pskc_signer_revocation_max_age must be"):
        make_config(tmp_path, otp={"pskc_signers": [{"manufacturer": "Acme",
                                                     "certificate": str(cert)}],
                                   "pskc_signer_revocation_max_age": seconds})


def test_revocation_needs_the_ca_certificates(tmp_path, ca):
    cert = ca.signer("Acme").write_certificate(tmp_path)
    with pytest.raises(ConfigError, match="pskc_signer_revocation needs"):
        make_config(tmp_path, otp={"pskc_signers": [{"manufacturer": "Acme",
                                                     "certificate": str(cert)}],
                                   "pskc_signer_revocation": True})
