"""Manufacturers' PSKC seed files (RFC 6030): the RFC's own examples and files made to break."""

from __future__ import annotations

import base64
import datetime as dt
import io
import re
import time
from pathlib import Path

import pskc
import pytest

from devices.errors import BadRequest
from devices.otp import seedfile
from devices.otp.codes import Algorithm
from devices.otp.rules import Kind

DATA = Path(__file__).resolve().parents[1] / "data" / "pskc"
RFC_SEED = b"12345678901234567890"  # RFC 4226's and RFC 6238's SHA-1 seed
FIGURE6_KEY = bytes.fromhex("12345678901234567890123456789012")
BULK_KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
HOTP = "urn:ietf:params:xml:ns:keyprov:pskc:hotp"
TOTP = "urn:ietf:params:xml:ns:keyprov:pskc:totp"


def figure(n: int) -> bytes:
    return (DATA / f"rfc6030-figure{n}.pskcxml").read_bytes()


def read(data: bytes, **kw) -> seedfile.SeedFile:
    return seedfile.read(data, now=time.time(), **kw)


def refusal(data: bytes, **kw) -> BadRequest:
    with pytest.raises(BadRequest) as err:
        read(data, **kw)
    return err.value


def secret_forms(seed: bytes) -> list[str]:
    return [seed.hex(), base64.b64encode(seed).decode(), seed.decode("latin-1")]


def made(*keys: dict, key: bytes | None = None) -> bytes:
    """A PSKC file written by python-pskc (``key``: encrypted under it, with MACs)."""
    container = pskc.PSKC()
    if key:
        container.encryption.setup_preshared_key(key=key)
        container.mac.setup(algorithm="hmac-sha1")
    for k in keys:
        container.add_key(**k)
    out = io.BytesIO()
    container.write(out)
    return out.getvalue()


def hotp_key(serial_no: str, /, **extra) -> dict:
    return {"serial": serial_no, "algorithm": HOTP, "response_length": 6,
            "response_encoding": "DECIMAL", "secret": RFC_SEED, "counter": 0, **extra}


# --------------------------------------------------------------------------- RFC 6030 figures


def test_figure3_plain_hotp_with_its_counter_and_digits():
    (r,) = read(figure(3)).records
    assert (r.package, r.key_id, r.serial, r.manufacturer) == (1, "12345678", "987654321",
                                                               "Manufacturer")
    assert (r.params.kind, r.params.digits, r.params.algorithm) == (Kind.HOTP, 8,
                                                                    Algorithm.SHA1)
    assert r.counter == 0 and r.seed == RFC_SEED


def test_figure5_imports_the_hotp_key_and_skips_the_pin_the_device_checks():
    f = read(figure(5))
    assert [r.serial for r in f.records] == ["987654321"]
    (skipped,) = f.skipped
    assert skipped.package == 2 and "PIN" in skipped.reason


def test_figure6_pre_shared_key_aes128_cbc_with_hmac_sha1():
    assert seedfile.probe(figure(6)) == seedfile.Probe(seedfile.Protection.PRE_SHARED_KEY,
                                                       "Pre-shared-key")
    f = read(figure(6), key=FIGURE6_KEY)
    (r,) = f.records
    assert r.seed == RFC_SEED and r.params.digits == 8
    assert f.protection is seedfile.Protection.PRE_SHARED_KEY


def test_figure7_pbkdf2_password():
    assert seedfile.probe(figure(7)).protection is seedfile.Protection.PASSWORD
    (r,) = read(figure(7), password="qwerty").records
    assert (r.serial, r.seed, r.manufacturer) == ("987654321", RFC_SEED, "TokenVendorAcme")


def test_figure9_signed_container_is_read_for_its_plain_seed():
    (r,) = read(figure(9)).records
    assert (r.serial, r.params.digits, r.seed) == ("0755225266", 6, RFC_SEED)


@pytest.mark.parametrize(("n", "reason", "words"), [
    (2, "PSKC_PACKAGE_REFUSED", ["key package 1", "no device serial", "no response length",
                                 "a secret of 4 bytes"]),
    (4, "PSKC_PACKAGE_REFUSED", ["key package 1", "no secret", "master key"]),
    (8, "PSKC_PROTECTION_UNSUPPORTED", ["public key", "rsa_1_5"]),
    (10, "PSKC_PACKAGE_REFUSED", ["4 of 4", "key package 1 (key 1, serial 654321): the key "
                                  "expired on 2006-05-31", "key package 4",
                                  "the serial of key package 3 again"]),
])
def test_rfc_figures_authd_cannot_run_are_refused_with_the_reason(n, reason, words):
    err = refusal(figure(n))
    assert err.reason == reason
    for word in words:
        assert word in str(err), (word, str(err))
    assert "nothing was imported" in str(err)


# --------------------------------------------------------------------------- bad files


def test_a_truncated_file_is_refused_as_unreadable():
    data = figure(6)
    for cut in (len(data) // 3, len(data) - 20):
        err = refusal(data[:cut], key=FIGURE6_KEY)
        assert err.reason == "PSKC_UNREADABLE" and "truncated" in str(err)
    assert refusal(b"").reason == "PSKC_UNREADABLE"
    assert "holds no key package" in str(refusal(b"<KeyContainer/>"))


def test_a_wrong_pre_shared_key_or_password_decrypts_nothing():
    for err in (refusal(figure(6), key=bytes(16)), refusal(figure(7), password="qwertz"),
                refusal(figure(6), key=FIGURE6_KEY[:15])):
        assert err.reason == "PSKC_DECRYPTION_FAILED", str(err)
        assert "key package 1" in str(err) and "key or password right" in str(err)
        for form in secret_forms(RFC_SEED):
            assert form not in str(err)


def test_an_encrypted_file_needs_its_key_and_says_which():
    err = refusal(figure(6))
    assert err.reason == "PSKC_KEY_REQUIRED" and err.metadata["protection"] == "pre_shared_key"
    assert "'Pre-shared-key'" in str(err)
    err = refusal(figure(7))
    assert err.metadata == {"protection": "password", "key_name": "My Password 1"}
    assert refusal(figure(6), password="qwerty").reason == "PSKC_KEY_REQUIRED"


def test_one_bad_package_among_good_ones_refuses_the_file():
    err = refusal((DATA / "bulk-one-bad.pskcxml").read_bytes())
    assert err.reason == "PSKC_PACKAGE_REFUSED" and err.field == "pskc"
    assert "1 of 4 key package(s)" in str(err)
    assert "key package 3 (key k3, serial PSKC-H-0003): 10 digits" in str(err)
    assert err.metadata["packages"] == "3"


def test_one_altered_package_of_an_encrypted_file_is_named():
    data = (DATA / "bulk-aes128.pskcxml").read_bytes()
    assert [r.serial for r in read(data, key=BULK_KEY).records] == [
        "PSKC-H-0001", "PSKC-T-0002", "PSKC-T-0004"]
    macs = re.findall(rb"<pskc:ValueMAC>([^<]+)</pskc:ValueMAC>", data)
    altered = data.replace(macs[1], base64.b64encode(bytes(20)))
    err = refusal(altered, key=BULK_KEY)
    assert err.reason == "PSKC_PACKAGE_REFUSED"
    assert "key package 2 (key k2, serial PSKC-T-0002): cannot decrypt the seed (MAC value " \
           "does not match)" in str(err)
    assert "decrypts other packages" in str(err)


def test_an_encrypted_value_without_its_mac_is_refused():
    data = re.sub(rb"<ValueMAC>.*?</ValueMAC>", b"", figure(6), flags=re.S)
    err = refusal(data, key=FIGURE6_KEY)
    assert "has no MAC" in str(err) and "6.1.1" in str(err)


def test_bulk_file_carries_counters_time_steps_digits_drift_and_expiry():
    f = read((DATA / "bulk-plain.pskcxml").read_bytes())
    h, t30, t60 = f.records
    assert (h.params.kind, h.params.digits, h.counter) == (Kind.HOTP, 6, 5)
    assert (t30.params.kind, t30.params.digits, t30.params.period, t30.drift) == (
        Kind.TOTP, 8, 30, 1)
    assert (t60.params.period, t60.params.algorithm, len(t60.seed)) == (60, Algorithm.SHA256, 32)
    assert t60.expires == dt.datetime(2099, 12, 31, tzinfo=dt.UTC).timestamp()
    assert len(f.digest) == 64


@pytest.mark.parametrize(("extra", "words"), [
    ({"algorithm": "urn:ietf:params:xml:ns:keyprov:pskc#OCRA-1:HOTP-SHA1-6:QN08"},
     "is not HOTP or TOTP"),
    ({"response_length": 9}, "9 digits: authd runs devices of 6, 7 or 8"),
    ({"response_encoding": "ALPHANUMERIC"}, "ALPHANUMERIC response"),
    ({"response_check": True}, "Luhn check digit"),
    ({"algorithm_suite": "HMAC-MD5"}, "the hash 'HMAC-MD5'"),
    ({"serial": "bad serial!"}, "serial is not 4..32"),
    ({"secret": b"short"}, "a secret of 5 bytes"),
    ({"policy__pin_key_id": "p1", "policy__pin_usage": "Prepend"}, "a PIN used prepend"),
    ({"policy__key_usage": ["Encrypt"]}, "not for OTP"),
    ({"expiry_date": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)}, "device expired on 2020-01-01"),
    ({"challenge_encoding": "DECIMAL"}, "challenge-response"),
])
def test_device_kinds_authd_cannot_run_are_refused_with_the_reason(extra, words):
    err = refusal(made(hotp_key("PSKC-OK-0001"), hotp_key("PSKC-BAD-0002", **extra)))
    assert "1 of 2" in str(err) and "key package 2" in str(err)
    assert words in str(err), str(err)


def test_a_totp_step_outside_authds_range_is_refused():
    key = hotp_key("PSKC-T-0001", algorithm=TOTP, time_interval=10)
    assert "a time step of 10 s" in str(refusal(made(key)))


def test_a_serial_twice_in_the_file_is_refused():
    err = refusal(made(hotp_key("PSKC-0001"), hotp_key("PSKC-0002"), hotp_key("PSKC-0001")))
    assert "key package 3 (serial PSKC-0001): the serial of key package 1 again" in str(err)


def test_totp_without_a_time_interval_uses_rfc_6238s_30_seconds():
    (r,) = read(made(hotp_key("PSKC-T-0001", algorithm=TOTP))).records
    assert r.params.period == 30


def test_a_file_made_with_a_pre_shared_key_round_trips():
    data = made(hotp_key("PSKC-E-0001", counter=7), key=BULK_KEY)
    (r,) = read(data, key=BULK_KEY).records
    assert (r.seed, r.counter) == (RFC_SEED, 7)


def test_seeds_are_in_no_message_or_repr():
    f = read((DATA / "bulk-plain.pskcxml").read_bytes())
    text = repr(f) + str(f.records)
    for r in f.records:
        for form in secret_forms(r.seed):
            assert form not in text


def test_xml_entities_are_refused_not_expanded():
    bomb = (b'<?xml version="1.0"?><!DOCTYPE KeyContainer [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            b'<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc">'
            b'<KeyPackage><DeviceInfo><SerialNo>&b;</SerialNo></DeviceInfo></KeyPackage>'
            b'</KeyContainer>')
    assert refusal(bomb).reason == "PSKC_UNREADABLE"
