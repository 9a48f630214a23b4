"""Signed seed files (RFC 6030 §7) through the OTP center, on SQLite and PostgreSQL: a file
of a manufacturer configured with its signing certificate is imported only when its signature
verifies; an altered or unsigned one is refused with the reason and nothing is written."""

from __future__ import annotations

import json
import re

import grpc
import pytest

from authd.errors import details_of
from authd.settings import ConfigError
from authd.v1 import otp_pb2, otp_pb2_grpc
from devices.otp.codes import Algorithm, hotp
from tests.conftest import make_config
from tests.pskc_signing import RFC_SEED, TestCa, hotp_key, pskc_file

O = otp_pb2  # noqa: E741
KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")


@pytest.fixture(scope="module")
def ca() -> TestCa:
    return TestCa()


@pytest.fixture(scope="module")
def acme(ca):
    return ca.signer("Acme")


@pytest.fixture
def center(server, store_url, acme, tmp_path):
    cert = acme.write_certificate(tmp_path)
    srv = server(store_url=store_url, otp={
        "pskc_signers": [{"manufacturer": "Acme", "certificate": str(cert)}]})
    return srv, otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "branch", "teller"))


def import_file(stub, pskc: bytes, **kw):
    return stub.ImportDevices(O.ImportDevicesRequest(pskc=pskc, operator_id="ops-kim", **kw))


def store_state(srv) -> tuple[list, list]:
    def read(tx):
        return (tx.all("SELECT serial, issuer FROM otp_devices ORDER BY serial"),
                tx.all("SELECT action, target, outcome FROM audit_records ORDER BY id"))
    devices, audit = srv.app.db.run(read, write=False)
    return [tuple(r) for r in devices], [tuple(r) for r in audit]


def refused(stub, pskc: bytes, **kw) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        import_file(stub, pskc, **kw)
    return err.value


def test_a_signed_file_is_imported_registered_and_verified(center, acme):
    srv, branch = center
    data = pskc_file(hotp_key("ACME-0001", "Acme"), hotp_key("ACME-0002", "Acme"),
                     signer=acme, key=KEY)
    resp = import_file(branch, data, pre_shared_key=KEY)
    assert (resp.signature, resp.signer) == ("verified", "Acme")
    assert [d.serial for d in resp.devices] == ["ACME-0001", "ACME-0002"]
    details = srv.app.db.run(lambda tx: tx.all(
        "SELECT detail FROM audit_records WHERE action = 'otp.import'"), write=False)
    assert [json.loads(r[0])["signature"] for r in details] == ["verified", "verified"]
    branch.Register(O.RegisterRequest(serial="ACME-0001", operator_id="teller-1",
                                      customer_id="A-1"))
    backend = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "backend", "ib"))
    code = hotp(RFC_SEED, 0, 6, Algorithm.SHA1)
    assert backend.Verify(O.VerifyRequest(serial="ACME-0001", code=code)).outcome == \
        O.VERIFY_OUTCOME_ACCEPTED


@pytest.mark.parametrize("dry_run", [False, True])
def test_an_altered_signed_file_is_refused_and_nothing_is_written(center, acme, dry_run):
    srv, branch = center
    data = pskc_file(hotp_key("ACME-0001", "Acme"), hotp_key("ACME-0002", "Acme"),
                     signer=acme)
    before = store_state(srv)
    err = refused(branch, data.replace(b"ACME-0002", b"ACME-0003"), dry_run=dry_run)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = details_of(err)
    assert info.reason == "PSKC_SIGNATURE_INVALID" and info.metadata["manufacturer"] == "Acme"
    assert "does not verify against the certificate configured for manufacturer 'Acme'" in \
        err.details() and "nothing was imported" in err.details()
    assert store_state(srv) == before


def test_an_unsigned_file_of_the_manufacturer_is_refused_and_nothing_is_written(center):
    srv, branch = center
    before = store_state(srv)
    err = refused(branch, pskc_file(hotp_key("ACME-0001", "Acme")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_of(err).reason == "PSKC_SIGNATURE_REQUIRED"
    assert "carries no signature" in err.details()
    assert store_state(srv) == before


def test_a_file_signed_by_another_key_is_refused(center, ca):
    srv, branch = center
    before = store_state(srv)
    err = refused(branch, pskc_file(hotp_key("ACME-0001", "Acme"), signer=ca.signer("Acme")))
    assert details_of(err).reason == "PSKC_SIGNATURE_INVALID"
    assert store_state(srv) == before


def test_another_manufacturers_files_import_as_before_and_the_answer_tells(center, ca):
    srv, branch = center
    plain = import_file(branch, pskc_file(hotp_key("OTHER-0001", "Other")))
    signed = import_file(branch, pskc_file(hotp_key("OTHER-0002", "Other"),
                                           signer=ca.signer("Other")))
    assert (plain.signature, signed.signature) == ("none", "unchecked")
    assert [r[0] for r in store_state(srv)[0]] == ["OTHER-0001", "OTHER-0002"]


def test_signed_only_refuses_what_no_configured_certificate_verifies(server, store_url, acme,
                                                                     tmp_path):
    cert = acme.write_certificate(tmp_path)
    srv = server(store_url=store_url, otp={
        "pskc_signed_only": True,
        "pskc_signers": [{"manufacturer": "Acme", "certificate": str(cert)}]})
    branch = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "branch", "teller"))
    data = pskc_file(hotp_key("ACME-0001", "Acme"), signer=acme)
    renamed = data.replace(b"<pskc:Manufacturer>Acme<", b"<pskc:Manufacturer>Acme Corp<")
    before = store_state(srv)
    assert details_of(refused(branch, pskc_file(hotp_key("OTHER-0001", "Other")))).reason == \
        "PSKC_SIGNER_UNKNOWN"
    # renamed after signing: known by the certificate it carries, and altered
    assert details_of(refused(branch, renamed)).reason == "PSKC_SIGNATURE_INVALID"
    assert store_state(srv) == before
    assert import_file(branch, data).signature == "verified"


def test_a_certificate_that_cannot_be_read_is_a_configuration_error(tmp_path):
    bad = tmp_path / "not-a-cert.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    for path in (bad, tmp_path / "absent.pem"):
        with pytest.raises(ConfigError, match=re.escape("certificate of 'Acme'")):
            make_config(tmp_path, otp={"pskc_signers": [
                {"manufacturer": "Acme", "certificate": str(path)}]})
    with pytest.raises(ConfigError, match="pskc_signed_only needs pskc_signers"):
        make_config(tmp_path, otp={"pskc_signed_only": True})
