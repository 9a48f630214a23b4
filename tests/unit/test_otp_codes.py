"""RFC 4226 and RFC 6238 published vectors, and agreement with pyotp."""

from __future__ import annotations

import base64
import os

import pyotp
import pytest

from devices.otp.codes import Algorithm, codes_equal, find_counter, hotp, time_step, totp

RFC4226_SEED = b"12345678901234567890"
RFC4226 = ["755224", "287082", "359152", "969429", "338314",
           "254676", "287922", "162583", "399871", "520489"]

RFC6238_SEEDS = {
    Algorithm.SHA1: b"12345678901234567890",
    Algorithm.SHA256: b"12345678901234567890123456789012",
    Algorithm.SHA512: b"1234567890123456789012345678901234567890123456789012345678901234",
}
RFC6238 = [  # (time, SHA1, SHA256, SHA512), 8 digits, 30 s step
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize("counter,expected", enumerate(RFC4226))
def test_rfc4226_appendix_d(counter: int, expected: str):
    assert hotp(RFC4226_SEED, counter) == expected


@pytest.mark.parametrize("row", RFC6238)
@pytest.mark.parametrize("index,algorithm", [(1, Algorithm.SHA1), (2, Algorithm.SHA256),
                                             (3, Algorithm.SHA512)])
def test_rfc6238_appendix_b(row, index: int, algorithm: Algorithm):
    assert totp(RFC6238_SEEDS[algorithm], row[0], 30, 8, algorithm) == row[index]


@pytest.mark.parametrize("algorithm", list(Algorithm))
@pytest.mark.parametrize("digits", [6, 8])
def test_agrees_with_pyotp(algorithm: Algorithm, digits: int):
    import hashlib

    seed = os.urandom(algorithm.seed_bytes)
    secret = base64.b32encode(seed).decode()
    digest = getattr(hashlib, algorithm.value.lower())
    ref_h = pyotp.HOTP(secret, digits=digits, digest=digest)
    ref_t = pyotp.TOTP(secret, digits=digits, interval=60, digest=digest)
    for counter in (0, 1, 77, 2**32 + 5):
        assert hotp(seed, counter, digits, algorithm) == ref_h.at(counter)
    for t in (0, 59, 60, 1_700_000_000.5):
        assert totp(seed, t, 60, digits, algorithm) == ref_t.at(t)


def test_time_step_and_find_counter():
    assert time_step(119.9, 60) == 1 and time_step(120, 60) == 2
    assert find_counter(RFC4226_SEED, "969429", range(0, 10), 6, Algorithm.SHA1) == 3
    assert find_counter(RFC4226_SEED, "969429", range(4, 10), 6, Algorithm.SHA1) is None
    assert codes_equal("123456", "123456") and not codes_equal("123456", "123457")
