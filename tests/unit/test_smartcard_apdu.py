"""ISO 7816-4 APDU encoding, chaining and status words (host side), and TLV."""

from __future__ import annotations

import pytest

from devices.smartcard.apdu import ApduFormat, ApduProcessor, CommandApdu
from devices.smartcard.errors import (
    ApduError,
    BadResponseError,
    CommandTooLongError,
    InvalidPinError,
    PinBlockedError,
    SecurityStatusError,
    describe_sw,
    error_for_sw,
)
from devices.smartcard.tlv import Tlv, parse_dict, tlv


@pytest.mark.parametrize(
    ("command", "extended", "expected"),
    [
        (CommandApdu(0x00, 0xA4, 0x04, 0x00), None, "00a40400"),  # case 1
        (CommandApdu(0x00, 0xCA, 0x00, 0x00, le=256), None, "00ca000000"),  # case 2S, Le 256 -> 00
        (CommandApdu(0x00, 0xCA, 0x00, 0x00, le=16), None, "00ca000010"),
        (CommandApdu(0x00, 0x20, 0x00, 0x80, b"\x31\x32"), None, "00200080023132"),  # case 3S
        (
            CommandApdu(0x00, 0xCB, 0x3F, 0xFF, b"\x5c\x01\x7e", 256),
            None,
            "00cb3fff035c017e00",
        ),  # case 4S
        (CommandApdu(0x00, 0xCA, 0x00, 0x00, le=65536), None, "00ca0000000000"),  # case 2E
        (CommandApdu(0x00, 0xCA, 0x00, 0x00, le=300), None, "00ca000000012c"),
        (
            CommandApdu(0x00, 0xDB, 0x3F, 0xFF, b"\xaa" * 3, 256),
            True,
            "00db3fff000003aaaaaa0100",
        ),  # case 4E
        (CommandApdu(0x00, 0xDB, 0x3F, 0xFF, b"\xaa" * 3), True, "00db3fff000003aaaaaa"),  # case 3E
    ],
)
def test_encoding(command: CommandApdu, extended: bool | None, expected: str) -> None:
    assert command.encode(extended).hex() == expected


def test_extended_picked_when_needed() -> None:
    apdu = CommandApdu(0x00, 0xDB, 0x3F, 0xFF, b"\x01" * 300).encode()
    assert apdu[4:7] == b"\x00\x01\x2c" and len(apdu) == 7 + 300


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cla": 0x100, "ins": 0, "p1": 0, "p2": 0},
        {"cla": 0, "ins": 0, "p1": 0, "p2": 0, "le": 65537},
    ],
)
def test_invalid_fields(kwargs: dict[str, int]) -> None:
    with pytest.raises(CommandTooLongError):
        CommandApdu(**kwargs)


def test_data_too_long() -> None:
    with pytest.raises(CommandTooLongError):
        CommandApdu(0, 0xDB, 0, 0, b"\x00" * 65536)
    with pytest.raises(CommandTooLongError):
        CommandApdu(0, 0xDB, 0, 0, b"\x00" * 300).encode(extended=False)


class ScriptedCard:
    """Answers from a script of (expected apdu hex, response data, sw)."""

    def __init__(self, script: list[tuple[str, bytes, int]]) -> None:
        self.script = list(script)

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        expected, data, sw = self.script.pop(0)
        assert apdu.hex() == expected
        return data, sw


def test_response_chaining_with_get_response() -> None:
    card = ScriptedCard(
        [
            ("00cb3fff035c017e00", b"A" * 256, 0x6105),
            ("00c0000005", b"B" * 5, 0x9000),
        ]
    )
    data = ApduProcessor(card).send(0x00, 0xCB, 0x3F, 0xFF, b"\x5c\x01\x7e")
    assert data == b"A" * 256 + b"B" * 5 and not card.script


def test_wrong_le_retried() -> None:
    card = ScriptedCard([("80ca000000", b"", 0x6C08), ("80ca000008", b"12345678", 0x9000)])
    assert ApduProcessor(card).send(0x80, 0xCA, 0x00, 0x00) == b"12345678"


def test_get_response_with_wrong_le_retried() -> None:
    card = ScriptedCard(
        [("00ca000000", b"x", 0x6100), ("00c0000000", b"", 0x6C03), ("00c0000003", b"yz!", 0x9000)]
    )
    assert ApduProcessor(card).send(0x00, 0xCA, 0x00, 0x00) == b"xyz!"


def test_command_chaining_splits_long_data() -> None:
    payload = bytes(range(256)) * 2  # 512 bytes -> 255 + 255 + 2
    card = ScriptedCard(
        [
            ("10db3fff" + "ff" + payload[:255].hex(), b"", 0x9000),
            ("10db3fff" + "ff" + payload[255:510].hex(), b"", 0x9000),
            ("00db3fff" + "02" + payload[510:].hex() + "00", b"", 0x9000),
        ]
    )
    ApduProcessor(card).send(0x00, 0xDB, 0x3F, 0xFF, payload)
    assert not card.script


def test_chaining_stops_at_first_error() -> None:
    card = ScriptedCard([("10db3fff" + "ff" + "00" * 255, b"", 0x6A80)])
    with pytest.raises(ApduError) as info:
        ApduProcessor(card).send(0x00, 0xDB, 0x3F, 0xFF, b"\x00" * 300)
    assert info.value.sw == 0x6A80


def test_extended_format_sends_one_apdu() -> None:
    payload = b"\x01" * 300
    card = ScriptedCard([("00db3fff00012c" + payload.hex() + "0000", b"ok", 0x9000)])
    assert ApduProcessor(card, ApduFormat.EXTENDED).send(0x00, 0xDB, 0x3F, 0xFF, payload) == b"ok"


@pytest.mark.parametrize(
    ("sw", "error", "attempts"),
    [(0x63C2, InvalidPinError, 2), (0x63C0, InvalidPinError, 0), (0x6983, PinBlockedError, 0)],
)
def test_pin_status_words(sw: int, error: type[InvalidPinError], attempts: int) -> None:
    exc = error_for_sw(b"", sw)
    assert type(exc) is error and exc.attempts_remaining == attempts and exc.sw == sw


def test_status_words_have_clear_messages() -> None:
    assert isinstance(error_for_sw(b"", 0x6982), SecurityStatusError)
    assert "6A80" in str(error_for_sw(b"", 0x6A80)) and "incorrect data" in str(
        error_for_sw(b"", 0x6A80)
    )
    assert describe_sw(0x1234) == "unknown status"
    assert type(error_for_sw(b"", 0x1234)) is ApduError


def test_tlv_roundtrip() -> None:
    for size in (0, 1, 127, 128, 255, 256, 4000):
        value = b"\x5a" * size
        (item,) = Tlv.parse_all(tlv(0x5FC105, value))
        assert item == Tlv(0x5FC105, value)
    assert (
        parse_dict(tlv(0x7C, tlv(0x82) + tlv(0x81, b"ab")))[0x7C]
        == bytes.fromhex("82008102") + b"ab"
    )


@pytest.mark.parametrize("raw", ["53", "5305aa", "5f", "5384ffffffff00", "7f"])
def test_tlv_malformed(raw: str) -> None:
    with pytest.raises(BadResponseError):
        Tlv.parse_all(bytes.fromhex(raw))
