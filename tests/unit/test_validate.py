"""The shared input checks (authd/validate.py)."""

from __future__ import annotations

import re

import pytest

from authd import validate
from devices.errors import BadRequest


@pytest.mark.parametrize("value", ["", "kim", "김철수 창구 3", "a" * 256, "tab-free text.",
                                   "\u3000ideographic space", "zero\u200bwidth"])
def test_text_accepts_ordinary_text(value: str):
    assert validate.text(value, "reason") == value


@pytest.mark.parametrize("value,words", [
    ("a\x00b", "must not contain control characters"),
    ("line\n", "must not contain control characters"),
    ("cr\r", "must not contain control characters"),
    ("tab\t", "must not contain control characters"),
    ("del\x7f", "must not contain control characters"),
    ("c1\x85", "must not contain control characters"),
    ("sep\u2028", "must not contain control characters"),
    ("para\u2029", "must not contain control characters"),
    ("a" * 257, "is longer than 256 characters"),
])
def test_text_refuses_control_characters_and_long_values(value: str, words: str):
    with pytest.raises(BadRequest) as err:
        validate.text(value, "reason")
    assert str(err.value).startswith("reason ") and words in str(err.value)
    assert value not in str(err.value)  # the message never echoes the value


def test_text_required_and_length():
    with pytest.raises(BadRequest, match="operator_id is required"):
        validate.text("  ", "operator_id", required=True)
    assert validate.text("abcd", "x", max_length=4) == "abcd"
    with pytest.raises(BadRequest, match="longer than 3"):
        validate.text("abcd", "x", max_length=3)


@pytest.mark.parametrize("value", ["OTP-0001", "abcd", "A" * 32, "9-9-9"])
def test_serial_accepts(value: str):
    assert validate.serial(value) == value


@pytest.mark.parametrize("value", ["OTP-0001\n", "OTP-0001\r\n", "\nOTP-0001", "OTP\x00001",
                                   "abc", "A" * 33, "-OTP1", "OTP 1", "ＯＴＰ１２３", ""])
def test_serial_refuses_what_a_dollar_regex_would_pass(value: str):
    with pytest.raises(BadRequest, match=r"serial must be 4\.\.32 letters"):
        validate.serial(value)


def test_identifier_matches_whole_value():
    pattern = re.compile(r"[a-z]+")
    assert validate.identifier("abc", "name", pattern, "lower-case letters") == "abc"
    for value in ("abc\n", "abc1", " abc"):
        with pytest.raises(BadRequest, match="name must be lower-case letters"):
            validate.identifier(value, "name", pattern, "lower-case letters")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_finite_refuses_nan_and_infinity(value: float):
    with pytest.raises(BadRequest, match="warranty_until must be a finite number"):
        validate.finite(value, "warranty_until")


def test_finite_bounds():
    assert validate.finite(0, "t", minimum=0) == 0.0
    assert validate.finite(1.5, "t", minimum=0, maximum=2) == 1.5
    with pytest.raises(BadRequest, match="t must be at least 0"):
        validate.finite(-0.1, "t", minimum=0)
    with pytest.raises(BadRequest, match=r"t must be at most 2\Z"):
        validate.finite(2.5, "t", maximum=2)
    with pytest.raises(BadRequest, match="finite number"):
        validate.finite(True, "t")  # type: ignore[arg-type]


def test_bounded_int_is_the_store_range_by_default():
    assert validate.bounded_int(0, "counter") == 0
    assert validate.bounded_int(validate.INT64_MAX, "counter") == 2**63 - 1
    for value in (-1, 2**63, 2**64 - 1):
        with pytest.raises(BadRequest, match=r"counter must be 0\.\.9223372036854775807"):
            validate.bounded_int(value, "counter")
    with pytest.raises(BadRequest, match="must be an integer"):
        validate.bounded_int(1.0, "counter")  # type: ignore[arg-type]
    assert validate.bounded_int(-5, "delta", minimum=-10, maximum=10) == -5


@pytest.mark.parametrize("value", ["C-1", "cust_0001", "a.b:c-d", "9" * 64])
def test_customer_ref_accepts_an_institutions_reference(value: str):
    assert validate.customer_ref(value) == value


@pytest.mark.parametrize("value,words", [
    ("", "customer_id (the institution's customer reference) is required"),
    ("C-1\n", "customer_id must be the institution's customer reference"),
    ("홍길동", "customer_id must be the institution's customer reference"),
    ("a b", "customer_id must be the institution's customer reference"),
    ("9" * 65, "customer_id must be the institution's customer reference"),
])
def test_customer_ref_refuses_anything_else(value: str, words: str):
    with pytest.raises(BadRequest) as err:
        validate.customer_ref(value)
    assert str(err.value).startswith(words) and err.value.field == "customer_id"
