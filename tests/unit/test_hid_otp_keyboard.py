"""Keyboard reports the device types and their decoding (HID usage page 0x07)."""

from __future__ import annotations

import pytest

from devices.hid_otp.keyboard import KeystrokeDecoder, encode_keystrokes, key_report


def test_digits_and_enter_use_keyboard_usage_ids() -> None:
    assert key_report("1") == bytes([0, 0, 0x1E, 0, 0, 0, 0, 0])
    assert key_report("9") == bytes([0, 0, 0x26, 0, 0, 0, 0, 0])
    assert key_report("0") == bytes([0, 0, 0x27, 0, 0, 0, 0, 0])
    assert key_report("\n") == bytes([0, 0, 0x28, 0, 0, 0, 0, 0])
    assert key_report("c") == bytes([0, 0, 0x06, 0, 0, 0, 0, 0])
    assert key_report("C") == bytes([0x02, 0, 0x06, 0, 0, 0, 0, 0])


def test_each_key_is_pressed_then_released() -> None:
    reports = encode_keystrokes("12")
    assert reports == [key_report("1"), bytes(8), key_report("2"), bytes(8)]


def test_decoder_round_trip() -> None:
    decoder = KeystrokeDecoder()
    text = "".join(decoder.feed(rep) for rep in encode_keystrokes("cbdefghijklnrtuv0123456789\n"))
    assert text == "cbdefghijklnrtuv0123456789\n"


def test_decoder_counts_a_held_key_once_and_ignores_odd_reports() -> None:
    decoder = KeystrokeDecoder()
    assert decoder.feed(key_report("5")) == "5"
    assert decoder.feed(key_report("5")) == ""
    assert decoder.feed(b"\x00\x00\x22") == ""
    assert decoder.feed(bytes(8)) == ""
    assert decoder.feed(key_report("5")) == "5"


def test_untypable_character() -> None:
    with pytest.raises(ValueError):
        key_report("€")
