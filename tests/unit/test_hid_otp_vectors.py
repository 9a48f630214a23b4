"""CRC, frame and configuration vectors published with Yubico's code (python-yubico tests,
yubico-c self-tests), and the RFC 4226 / FIPS 198 vectors the simulated device must hit."""

from __future__ import annotations

import pytest

from devices.hid_otp.config import SlotConfig, hmac_sha1_config, hotp_config
from devices.hid_otp.constants import Command, ExtFlag
from devices.hid_otp.crc import CRC_OK_RESIDUAL, append_crc, check_crc, crc16
from devices.hid_otp.errors import InvalidConfigError
from devices.hid_otp.frame import build_frame, frame_reports
from devices.hid_otp.session import pad_challenge

NIST_KEY = bytes(range(0x30, 0x44))  # FIPS 198 A.2 key: 0x30..0x43


def test_crc_of_1234() -> None:
    assert crc16(b"\x01\x02\x03\x04") == 0xC66E


def test_crc_residual_of_self_checking_block() -> None:
    assert crc16(append_crc(b"\x01\x02\x03\x04")) == CRC_OK_RESIDUAL


def test_crc_of_a_yubico_otp_token() -> None:
    token = bytes.fromhex("8792ebfe26cc130030c20011c89f")
    assert ~crc16(token) & 0xFFFF == 0xC823
    assert check_crc(token + bytes.fromhex("23c8"))
    assert not check_crc(bytes.fromhex("0792ebfe26cc130030c20011c89f23c8"))


def test_crc_of_empty_payload() -> None:
    assert crc16(bytes(64)) == 0x5B6B


def r(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def test_empty_frame_sends_first_and_last_report_only() -> None:
    reports = frame_reports(build_frame(0x32))
    assert reports == [r("00000000000000 80"), r("00326b5b000000 89")]


def test_frame_with_data_in_the_middle() -> None:
    payload = bytes(38) + b"\x01\x02\x03" + bytes(23)
    reports = frame_reports(build_frame(0x32, payload))
    assert reports == [
        r("00000000000000 80"),
        r("00000001020300 85"),
        r("00320173000000 89"),
    ]


def test_frame_is_70_bytes_and_rejects_oversized_payload() -> None:
    assert len(build_frame(Command.DEVICE_SERIAL)) == 70
    with pytest.raises(ValueError):
        build_frame(0x01, bytes(65))
    with pytest.raises(ValueError):
        frame_reports(bytes(69))


def config_reports(command: int, config: SlotConfig, current_code: bytes = bytes(6)) -> list[bytes]:
    return frame_reports(build_frame(command, bytes(config) + current_code))


def test_oath_hotp_config_vector() -> None:
    config = hotp_config(NIST_KEY, append_cr=False, ext_flags=0)
    assert config_reports(Command.CONFIG_2, config) == [
        r("00000000000000 80"),
        r("00004041424300 82"),
        r("00303132333435 83"),
        r("363738393a3b3c 84"),
        r("3d3e3f00000000 85"),
        r("00000000400000 86"),
        r("006ab900000000 87"),
        r("00039556000000 89"),
    ]


def test_oath_hotp_8_digits_with_token_id_vector() -> None:
    config = hotp_config(
        NIST_KEY, digits=8, token_id=b"\x01\x02\x03\x04\x05\x06", append_cr=False, ext_flags=0
    )
    assert config_reports(Command.CONFIG_2, config) == [
        r("01020304050600 80"),
        r("00004041424300 82"),
        r("00303132333435 83"),
        r("363738393a3b3c 84"),
        r("3d3e3f00000000 85"),
        r("00000600404200 86"),
        r("000eec00000000 87"),
        r("00039556000000 89"),
    ]


def test_oath_hotp_initial_moving_factor_vector() -> None:
    config = hotp_config(
        NIST_KEY,
        digits=8,
        initial_counter=0x1210,
        token_id=b"\x01\x02\x03\x04\x05\x06",
        append_cr=False,
        ext_flags=0,
    )
    reports = config_reports(Command.CONFIG_2, config)
    assert reports[1] == r("00004041424301 82")
    assert reports[2] == r("21303132333435 83")
    assert reports[6] == r("0003ea00000000 87")


def test_hmac_sha1_variable_length_vector() -> None:
    config = hmac_sha1_config(NIST_KEY, ext_flags=ExtFlag.SERIAL_API_VISIBLE)
    assert config_reports(Command.CONFIG_2, config) == [
        r("00000000000000 80"),
        r("00004041424300 82"),
        r("00303132333435 83"),
        r("363738393a3b3c 84"),
        r("3d3e3f00000000 85"),
        r("00000004402600 86"),
        r("00984100000000 87"),
        r("00039556000000 89"),
    ]


def test_hmac_sha1_fixed_length_vector() -> None:
    config = hmac_sha1_config(NIST_KEY, variable_length=False, ext_flags=0)
    assert config_reports(Command.CONFIG_2, config)[5:7] == [
        r("00000000402200 86"),
        r("00e90f00000000 87"),
    ]


def test_static_ticket_vector() -> None:
    config = SlotConfig(key=r("e2bee9a36568a00d026a02f85e61e6fb"), tkt_flags=0x20, cfg_flags=0x20)
    assert config_reports(Command.CONFIG_1, config) == [
        r("00000000000000 80"),
        r("00e2bee9a36568 83"),
        r("a00d026a02f85e 84"),
        r("61e6fb00000000 85"),
        r("00000000202000 86"),
        r("005a9300000000 87"),
        r("00019556000000 89"),
    ]


def test_access_code_in_config_and_appended_vector() -> None:
    code = r("010203040506")
    config = SlotConfig(
        key=r("e2bee9a36568a00d026a02f85e61e6fb"), access_code=code, tkt_flags=0x20, cfg_flags=0x20
    )
    assert config_reports(Command.CONFIG_1, config, code) == [
        r("00000000000000 80"),
        r("00e2bee9a36568 83"),
        r("a00d026a02f85e 84"),
        r("61e6fb01020304 85"),
        r("05060000202000 86"),
        r("000d3901020304 87"),
        r("05060000000000 88"),
        r("0001c2fc000000 89"),
    ]


def test_current_access_code_follows_the_config_vector() -> None:
    config = SlotConfig(
        fixed=r("4d4d4d4d"),
        key=r("523d7ce7e7b6ee853517a3e3cc1985c7"),
        tkt_flags=0x60,
        cfg_flags=0x70,
    )
    assert config_reports(Command.CONFIG_2, config, r("aabbccddeeff")) == [
        r("4d4d4d4d000000 80"),
        r("00523d7ce7e7b6 83"),
        r("ee853517a3e3cc 84"),
        r("1985c700000000 85"),
        r("00000400607000 86"),
        r("0072adaabbccdd 87"),
        r("eeff0000000000 88"),
        r("0003fec4000000 89"),
    ]


def test_config_round_trip_and_crc_check() -> None:
    config = hotp_config(NIST_KEY, digits=8, access_code=b"secret")
    raw = bytes(config)
    assert len(raw) == 52 and check_crc(raw)
    assert SlotConfig.from_bytes(raw) == config
    with pytest.raises(InvalidConfigError):
        SlotConfig.from_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seed": bytes(19)}, "20 bytes"),
        ({"seed": bytes(20), "digits": 7}, "6 or 8"),
        ({"seed": bytes(20), "initial_counter": 5}, "multiple of 16"),
        ({"seed": bytes(20), "access_code": b"12345"}, "6 bytes"),
    ],
)
def test_hotp_config_rejects_bad_input(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidConfigError, match=message):
        hotp_config(**kwargs)  # type: ignore[arg-type]


def test_challenge_padding_differs_from_last_byte() -> None:
    assert pad_challenge(b"abc") == b"abc" + bytes(61)
    assert pad_challenge(b"ab\0") == b"ab\0" + b"\1" * 61
    assert pad_challenge(b"") == bytes(64)
    with pytest.raises(InvalidConfigError):
        pad_challenge(bytes(64))
