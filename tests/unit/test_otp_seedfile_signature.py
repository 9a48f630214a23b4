"""Signed PSKC seed files (RFC 6030 §7): a file of a manufacturer with a configured
certificate is imported only when its XML signature verifies against that certificate."""

from __future__ import annotations

import base64
import re
import time

import pytest

from devices.errors import BadRequest
from devices.otp import seedfile
from devices.otp.seedfile import Signature
from tests.pskc_signing import RFC_SEED, TestCa, hotp_key, pskc_file

KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")


@pytest.fixture(scope="module")
def ca() -> TestCa:
    return TestCa()


@pytest.fixture(scope="module")
def acme(ca):
    return ca.signer("Acme")


def read(data: bytes, **kw) -> seedfile.SeedFile:
    return seedfile.read(data, now=time.time(), **kw)


def refusal(data: bytes, **kw) -> BadRequest:
    with pytest.raises(BadRequest) as err:
        read(data, **kw)
    return err.value


def test_a_signed_file_verifies_against_its_manufacturers_certificate(acme):
    data = pskc_file(hotp_key("ACME-0001", "Acme"), hotp_key("ACME-0002", "Acme"),
                     signer=acme)
    f = read(data, signers={"Acme": acme.cert_pem})
    assert (f.signature, f.signer) == (Signature.VERIFIED, "Acme")
    assert [(r.serial, r.seed) for r in f.records] == [("ACME-0001", RFC_SEED),
                                                        ("ACME-0002", RFC_SEED)]


def test_an_elliptic_curve_signature_and_encrypted_seeds_verify(ca):
    signer = ca.signer("Acme", elliptic=True)
    data = pskc_file(hotp_key("ACME-0001", "Acme"), signer=signer, key=KEY)
    f = read(data, key=KEY, signers={"Acme": signer.cert_pem})
    assert f.signature is Signature.VERIFIED and f.records[0].seed == RFC_SEED


@pytest.mark.parametrize("tamper", [
    pytest.param(lambda d: d.replace(b"ACME-0002", b"ACME-0009"), id="serial"),
    pytest.param(lambda d: d.replace(base64.b64encode(RFC_SEED),
                                     base64.b64encode(b"98765432109876543210")), id="seed"),
    pytest.param(lambda d: d.replace(b"<pskc:PlainValue>0</pskc:PlainValue>",
                                     b"<pskc:PlainValue>7</pskc:PlainValue>", 1), id="counter"),
    pytest.param(lambda d: re.sub(rb"(<ds:SignatureValue>)(.)", lambda m: m.group(1) + (
        b"B" if m.group(2) == b"A" else b"A"), d, count=1), id="signature-value"),
    pytest.param(lambda d: d.replace(b"<pskc:KeyPackage>", d[d.index(b"<pskc:KeyPackage>"):
                                     d.index(b"</pskc:KeyPackage>") + 18].replace(
                                         b"ACME-0001", b"ACME-0077") + b"<pskc:KeyPackage>",
                                     1), id="package-added"),
])
def test_a_file_altered_after_signing_is_refused(acme, tamper):
    data = pskc_file(hotp_key("ACME-0001", "Acme"), hotp_key("ACME-0002", "Acme"),
                     signer=acme)
    altered = tamper(data)
    assert altered != data
    err = refusal(altered, signers={"Acme": acme.cert_pem})
    assert err.reason == "PSKC_SIGNATURE_INVALID" and err.metadata["manufacturer"] == "Acme"
    assert "nothing was imported" in str(err) and "Acme" in str(err)


def test_a_file_signed_with_another_key_is_refused_even_with_a_certificate_of_the_same_ca(
        ca, acme):
    impostor = ca.signer("Acme")
    data = pskc_file(hotp_key("ACME-0001", "Acme"), signer=impostor)
    assert refusal(data, signers={"Acme": acme.cert_pem}).reason == "PSKC_SIGNATURE_INVALID"
    assert read(data, signers={"Acme": impostor.cert_pem}).signature is Signature.VERIFIED


def test_an_unsigned_file_of_a_manufacturer_that_signs_is_refused(acme):
    err = refusal(pskc_file(hotp_key("ACME-0001", "Acme")), signers={"Acme": acme.cert_pem})
    assert err.reason == "PSKC_SIGNATURE_REQUIRED"
    assert "carries no signature" in str(err) and "Acme" in str(err)


def test_a_signature_stripped_from_the_file_is_refused(acme):
    data = pskc_file(hotp_key("ACME-0001", "Acme"), signer=acme)
    stripped = re.sub(rb"<ds:Signature>.*</ds:Signature>", b"", data, flags=re.S)
    assert b"Signature" not in stripped
    assert refusal(stripped, signers={"Acme": acme.cert_pem}).reason == \
        "PSKC_SIGNATURE_REQUIRED"


def test_files_of_other_manufacturers_are_read_as_before_and_say_so(acme, ca):
    signers = {"Acme": acme.cert_pem}
    assert read(pskc_file(hotp_key("OTHER-0001", "Other")),
                signers=signers).signature is Signature.NONE
    other = ca.signer("Other")
    f = read(pskc_file(hotp_key("OTHER-0001", "Other"), signer=other), signers=signers)
    assert (f.signature, f.signer) == (Signature.UNCHECKED, "")


@pytest.mark.parametrize("signed", [False, True])
def test_signed_only_refuses_a_file_no_configured_certificate_verifies(acme, ca, signed):
    data = pskc_file(hotp_key("OTHER-0001", "Other"),
                     signer=ca.signer("Other") if signed else None)
    err = refusal(data, signers={"Acme": acme.cert_pem}, signed_only=True)
    assert err.reason == "PSKC_SIGNER_UNKNOWN" and "Other" in str(err)


def test_a_renamed_file_is_known_by_the_certificate_it_carries(acme):
    data = pskc_file(hotp_key("ACME-0001", "Acme"), signer=acme)
    renamed = data.replace(b"<pskc:Manufacturer>Acme<", b"<pskc:Manufacturer>Acma<")
    err = refusal(renamed, signers={"Acme": acme.cert_pem})
    assert err.reason == "PSKC_SIGNATURE_INVALID" and err.metadata["manufacturer"] == "Acme"


def test_a_file_signed_with_a_configured_certificate_under_another_name_is_refused(ca):
    signer = ca.signer("Acme")
    data = pskc_file(hotp_key("ACME-0001", "Acme Corp."), signer=signer)
    err = refusal(data, signers={"Acme": signer.cert_pem})
    assert err.reason == "PSKC_SIGNATURE_INVALID" and "name Acme Corp." in str(err)


def test_one_file_naming_two_signing_manufacturers_is_refused(acme, ca):
    beta = ca.signer("Beta")
    data = pskc_file(hotp_key("ACME-0001", "Acme"), hotp_key("BETA-0001", "Beta"),
                     signer=acme)
    err = refusal(data, signers={"Acme": acme.cert_pem, "Beta": beta.cert_pem})
    assert err.reason == "PSKC_SIGNATURE_INVALID" and "Acme, Beta" in str(err)


def test_the_signature_is_checked_before_the_key_is_asked_for(acme):
    data = pskc_file(hotp_key("ACME-0001", "Acme"), signer=acme, key=KEY)
    altered = data.replace(b"ACME-0001", b"ACME-0002")
    assert refusal(altered, signers={"Acme": acme.cert_pem}).reason == \
        "PSKC_SIGNATURE_INVALID"
