"""Importing manufacturers' PSKC seed files through the OTP center, on SQLite and PostgreSQL:
all or nothing per file, dry runs that change nothing, seeds sealed and never shown."""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path

import grpc
import pytest

from authd.errors import details_of
from authd.v1 import otp_pb2, otp_pb2_grpc
from devices.otp.codes import Algorithm, hotp, time_step, totp

O = otp_pb2  # noqa: E741
DATA = Path(__file__).resolve().parents[1] / "data" / "pskc"
RFC_SEED = b"12345678901234567890"
SHA256_SEED = b"12345678901234567890123456789012"
FIGURE6_KEY = bytes.fromhex("12345678901234567890123456789012")
BULK_KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
BULK = ["PSKC-H-0001", "PSKC-T-0002", "PSKC-T-0004"]


def data(name: str) -> bytes:
    return (DATA / name).read_bytes()


@pytest.fixture
def center(server, store_url):
    srv = server(store_url=store_url)
    return srv, otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "branch", "teller"))


def backend(srv, institution: str = "bank-a") -> otp_pb2_grpc.OtpServiceStub:
    return otp_pb2_grpc.OtpServiceStub(srv.channel(institution, "backend", "ib"))


def import_file(stub, pskc: bytes, *, dry_run: bool = False, **protection):
    return stub.ImportDevices(O.ImportDevicesRequest(pskc=pskc, dry_run=dry_run,
                                                     operator_id="ops-kim", **protection))


def refused(stub, pskc: bytes, **kw) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        import_file(stub, pskc, **kw)
    return err.value


def store_state(srv) -> tuple[list, list]:
    """Every device row and every audit record: what an import may change."""
    def read(tx):
        return (tx.all("SELECT serial, kind, digits, period, last_counter, drift, issuer"
                       " FROM otp_devices ORDER BY serial"),
                tx.all("SELECT action, target, outcome FROM audit_records ORDER BY id"))
    devices, audit = srv.app.db.run(read, write=False)
    return [tuple(r) for r in devices], [tuple(r) for r in audit]


def seeds_at_rest(srv) -> list[bytes]:
    return [bytes(r[0]) for r in srv.app.db.run(
        lambda tx: tx.all("SELECT seed FROM otp_devices"), write=False)]


def register(stub, serial: str, customer: str = "A-1") -> otp_pb2.DeviceStatus:
    return stub.Register(O.RegisterRequest(serial=serial, operator_id="teller-1",
                                           customer_id=customer))


def verify(srv, serial: str, code: str, institution: str = "bank-a") -> int:
    return backend(srv, institution).Verify(O.VerifyRequest(serial=serial, code=code)).outcome


def test_rfc_figure6_pre_shared_key_imports_registers_and_verifies(center):
    srv, branch = center
    resp = import_file(branch, data("rfc6030-figure6.pskcxml"), pre_shared_key=FIGURE6_KEY)
    (d,) = resp.devices
    assert (d.serial, d.key_package, d.key_id, d.manufacturer) == ("987654321", 1, "12345678",
                                                                   "Manufacturer")
    assert (d.parameters.kind, d.parameters.digits, d.parameters.counter) == (
        O.OTP_KIND_HOTP, 8, 0)
    assert not resp.dry_run and len(resp.file_sha256) == 64
    # In stock: enrolled with bank-a as issuer, registered nowhere, so nobody verifies yet.
    assert verify(srv, "987654321", hotp(RFC_SEED, 0, 8)) == O.VERIFY_OUTCOME_NOT_REGISTERED
    status = register(branch, "987654321")
    assert status.issuer == "bank-a" and [r.institution for r in status.registrations] == [
        "bank-a"]
    assert verify(srv, "987654321", "84755224") == O.VERIFY_OUTCOME_ACCEPTED  # RFC 4226, C=0
    assert verify(srv, "987654321", hotp(RFC_SEED, 1, 8)) == O.VERIFY_OUTCOME_ACCEPTED
    assert verify(srv, "987654321", hotp(RFC_SEED, 1, 8)) == O.VERIFY_OUTCOME_REPLAYED
    # The seed is sealed under the KEK: in no form in the store.
    (sealed,) = seeds_at_rest(srv)
    assert RFC_SEED not in sealed and RFC_SEED.hex().encode() not in sealed
    assert base64.b64encode(RFC_SEED) not in sealed


def test_rfc_figure7_pbkdf2_password_then_online_registration_with_the_code(center):
    srv, branch = center
    resp = import_file(branch, data("rfc6030-figure7.pskcxml"), password="qwerty")
    assert [d.serial for d in resp.devices] == ["987654321"]
    # Another institution's customer registers it online with the device's code.
    bank_b = backend(srv, "bank-b")
    status = bank_b.Register(O.RegisterRequest(serial="987654321", strong_authentication=True,
                                               code=hotp(RFC_SEED, 0, 8), customer_id="B-9"))
    assert [r.institution for r in status.registrations] == ["bank-b"]
    assert verify(srv, "987654321", hotp(RFC_SEED, 1, 8), "bank-b") == O.VERIFY_OUTCOME_ACCEPTED


def test_bulk_file_carries_counter_time_step_digits_and_drift(center):
    srv, branch = center
    resp = import_file(branch, data("bulk-aes128.pskcxml"), pre_shared_key=BULK_KEY)
    assert [d.serial for d in resp.devices] == BULK
    h, t30, t60 = resp.devices
    assert (h.parameters.counter, h.parameters.digits) == (5, 6)
    assert (t30.parameters.period_seconds, t30.parameters.digits, t30.drift_steps) == (30, 8, 1)
    assert (t60.parameters.period_seconds, t60.parameters.algorithm) == (60,
                                                                        O.OTP_ALGORITHM_SHA256)
    assert t60.warranty_until > time.time()
    for serial in BULK:
        register(branch, serial)
    # HOTP: the file's counter is the next one; the codes before it are not accepted.
    assert verify(srv, "PSKC-H-0001", hotp(RFC_SEED, 4)) != O.VERIFY_OUTCOME_ACCEPTED
    assert verify(srv, "PSKC-H-0001", hotp(RFC_SEED, 5)) == O.VERIFY_OUTCOME_ACCEPTED
    # TOTP, 30 s, 8 digits, a drift of +1 step: two steps ahead is inside the window.
    ahead = (time_step(time.time(), 30) + 2) * 30
    assert verify(srv, "PSKC-T-0002", totp(RFC_SEED, ahead, 30, 8)) == O.VERIFY_OUTCOME_ACCEPTED
    assert verify(srv, "PSKC-T-0004", totp(SHA256_SEED, time.time(), 60, 6, Algorithm.SHA256)
                  ) == O.VERIFY_OUTCOME_ACCEPTED
    status = branch.GetStatus(O.GetStatusRequest(serial="PSKC-T-0004"))
    assert status.warranty_until == t60.warranty_until
    _, audit = store_state(srv)
    assert [a for a in audit if a[0] == "otp.import"] == [
        ("otp.import", s, "imported") for s in BULK]


def test_dry_run_reports_and_changes_nothing(center):
    srv, branch = center
    before = store_state(srv)
    resp = import_file(branch, data("bulk-plain.pskcxml"), dry_run=True)
    assert resp.dry_run and [d.serial for d in resp.devices] == BULK
    assert store_state(srv) == before
    # A refused dry run tells the same as a refused import, and changes nothing either.
    err = refused(branch, data("bulk-one-bad.pskcxml"), dry_run=True)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "key package 3" in err.details()
    assert store_state(srv) == before
    # The real import afterwards imports what the dry run said.
    assert [d.serial for d in import_file(branch, data("bulk-plain.pskcxml")).devices] == BULK
    assert [r[0] for r in store_state(srv)[0]] == BULK


def test_one_bad_package_among_good_ones_imports_nothing(center):
    srv, branch = center
    before = store_state(srv)
    err = refused(branch, data("bulk-one-bad.pskcxml"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "key package 3 (key k3, serial PSKC-H-0003): 10 digits" in err.details()
    assert "nothing was imported" in err.details()
    info = details_of(err)
    assert info.reason == "PSKC_PACKAGE_REFUSED" and info.metadata["packages"] == "3"
    assert store_state(srv) == before


def test_an_altered_package_of_an_encrypted_file_imports_nothing(center):
    srv, branch = center
    pskc = data("bulk-aes128.pskcxml")
    macs = re.findall(rb"<pskc:ValueMAC>([^<]+)</pskc:ValueMAC>", pskc)
    altered = pskc.replace(macs[2], base64.b64encode(bytes(20)))
    before = store_state(srv)
    err = refused(branch, altered, pre_shared_key=BULK_KEY)
    assert "key package 3 (key k4, serial PSKC-T-0004): cannot decrypt the seed" in err.details()
    assert store_state(srv) == before


def test_truncated_file_and_wrong_key_or_password_import_nothing(center):
    srv, branch = center
    before = store_state(srv)
    pskc = data("rfc6030-figure6.pskcxml")
    cases = [
        (refused(branch, pskc[: len(pskc) // 2], pre_shared_key=FIGURE6_KEY), "PSKC_UNREADABLE"),
        (refused(branch, pskc, pre_shared_key=bytes(16)), "PSKC_DECRYPTION_FAILED"),
        (refused(branch, data("rfc6030-figure7.pskcxml"), password="QWERTY"),
         "PSKC_DECRYPTION_FAILED"),
        (refused(branch, pskc), "PSKC_KEY_REQUIRED"),
        (refused(branch, pskc, pre_shared_key=b"short"), "BAD_REQUEST"),
    ]
    for err, reason in cases:
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
        assert details_of(err).reason == reason, err.details()
        assert RFC_SEED.decode() not in err.details()
    assert store_state(srv) == before


def test_a_serial_enrolled_already_refuses_the_file(center):
    srv, branch = center
    branch.Enroll(O.EnrollRequest(serial="PSKC-T-0002", operator_id="kim", customer_id="A-1",
                                  parameters=O.OtpParameters(kind=O.OTP_KIND_TOTP)))
    before = store_state(srv)
    err = refused(branch, data("bulk-plain.pskcxml"))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "PSKC-T-0002 (key package 2)" in err.details() and "bank-a" not in err.details()
    assert details_of(err).reason == "PSKC_SERIAL_ENROLLED"
    assert store_state(srv) == before
    # The same file twice: the second import is refused whole.
    other = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-b", "branch", "teller"))
    import_file(other, data("rfc6030-figure3.pskcxml"))
    err = refused(other, data("rfc6030-figure3.pskcxml"))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS


def test_rfc_files_authd_cannot_run_are_refused_naming_the_package(center):
    srv, branch = center
    for name, words in [("rfc6030-figure4.pskcxml", "no secret"),
                        ("rfc6030-figure8.pskcxml", "public key"),
                        ("rfc6030-figure10.pskcxml", "the serial of key package 3 again")]:
        err = refused(branch, data(name))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and words in err.details()
    assert store_state(srv)[0] == []
    resp = import_file(branch, data("rfc6030-figure5.pskcxml"))
    assert [d.serial for d in resp.devices] == ["987654321"]
    assert [(s.key_package, s.key_id) for s in resp.skipped] == [(2, "123456781")]


def test_only_a_branch_with_an_operator_imports(center):
    srv, branch = center
    pskc = data("rfc6030-figure3.pskcxml")
    for role in ("backend", "admin"):
        stub = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", role, "x"))
        assert refused(stub, pskc).code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as err:
        branch.ImportDevices(O.ImportDevicesRequest(pskc=pskc))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "operator_id" in \
        err.value.details()
    assert store_state(srv)[0] == []


def test_seeds_reach_no_log_error_or_metric(center, caplog):
    import logging

    from prometheus_client import REGISTRY, generate_latest

    srv, branch = center
    caplog.set_level(logging.DEBUG)
    import_file(branch, data("bulk-aes128.pskcxml"), pre_shared_key=BULK_KEY)
    errors = [refused(branch, data("bulk-aes128.pskcxml"), pre_shared_key=BULK_KEY).details(),
              refused(branch, data("bulk-one-bad.pskcxml")).details(),
              refused(branch, data("rfc6030-figure6.pskcxml"), pre_shared_key=bytes(16)).details()]
    seen = caplog.text + "\n".join(errors) + generate_latest(REGISTRY).decode()
    seen += str(srv.app.db.run(lambda tx: tx.all("SELECT detail FROM audit_records"),
                               write=False))
    for seed in (RFC_SEED, SHA256_SEED, BULK_KEY, FIGURE6_KEY):
        for form in (seed.hex(), base64.b64encode(seed).decode(), seed.decode("latin-1")):
            assert form not in seen


def test_a_serial_inserted_meanwhile_rolls_the_whole_file_back(center):
    """The insert itself refuses a serial that appeared after the check (a concurrent import
    or enrolment): here the same record twice, past the file's own check."""
    import dataclasses

    from authd.context import Caller, Role
    from authd.otp.feature import OtpFeature
    from devices.errors import AlreadyPresent

    srv, _ = center
    otp = srv.app.feature(OtpFeature).service
    seeds = otp.read_seed_file(data("bulk-plain.pskcxml"), key=None, password=None)
    twice = dataclasses.replace(seeds, records=seeds.records + seeds.records[:1])
    before = store_state(srv)
    with pytest.raises(AlreadyPresent, match="PSKC-H-0001"):
        srv.app.db.run(lambda tx: otp.import_devices(
            tx, seeds=twice, caller=Caller("bank-a", Role.BRANCH, "t"), operator="kim",
            dry_run=False))
    assert store_state(srv) == before
