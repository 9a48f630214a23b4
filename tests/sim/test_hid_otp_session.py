"""The real driver and protocol code over the simulated device, byte for byte."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time

import pytest

from devices.hid_otp import HidOtpSession, Slot, hmac_sha1_config, hotp_config, read_typed_text
from devices.hid_otp.config import SlotConfig
from devices.hid_otp.constants import ExtFlag, TktFlag
from devices.hid_otp.errors import (
    AccessCodeError,
    CommandRejectedError,
    InvalidConfigError,
    SlotNotConfiguredError,
)
from drivers.hid import OtpHidConnection
from simulators.hid_otp import SimulatorBus
from tests.conftest import joined, wait_for

from .hid_otp_helpers import FAST, RecordingHandle, attach

RFC4226_SEED = b"12345678901234567890"
RFC4226_CODES = [
    "755224",
    "287082",
    "359152",
    "969429",
    "338314",
    "254676",
    "287922",
    "162583",
    "399871",
    "520489",
]
NIST_KEY = bytes(range(0x30, 0x44))


def test_status_version_and_serial() -> None:
    a = attach(serial=12345678, version=(5, 2, 7))
    assert a.session.version == (5, 2, 7)
    status = a.session.status()
    assert status.pgm_seq == 0 and not status.is_configured(Slot.ONE)
    assert a.session.serial() == 12345678


def test_serial_command_bytes_on_the_wire() -> None:
    bus = SimulatorBus()
    a = attach(bus, serial=0x00BC614E)
    recorder = RecordingHandle(bus.open_path(a.path))
    session = HidOtpSession(OtpHidConnection(recorder), FAST)
    assert session.serial() == 0x00BC614E
    # The frame: report id 0, first chunk, (all-zero middle chunks skipped), last chunk.
    assert recorder.sent[:2] == [
        bytes.fromhex("00 00000000000000 80"),
        bytes.fromhex("00 00106b5b000000 89"),
    ]
    # Then the reset report leaving read mode.
    assert recorder.sent[2] == bytes.fromhex("00 00000000000000 8f")
    # The response: serial big-endian + complemented CRC (little-endian), chunk 0, then done.
    data_reports = [rep for rep in recorder.received if rep[8] & 0x40]
    assert data_reports[0][1:5] == bytes.fromhex("00bc614e")
    assert data_reports[0][8] == 0x40 and data_reports[-1][8] == 0x40
    assert all(len(rep) == 9 and rep[0] == 0 for rep in recorder.received)


def test_hotp_touch_types_rfc4226_codes() -> None:
    a = attach()
    a.session.put_configuration(Slot.ONE, hotp_config(RFC4226_SEED))
    status = a.session.status()
    assert status.is_configured(Slot.ONE) and status.is_touch_triggered(Slot.ONE)
    typed = []
    for _ in range(10):
        a.device.touch()
        typed.append(read_typed_text(a.connection, first_timeout_ms=500))
    assert typed == RFC4226_CODES


def test_hotp_eight_digits_from_initial_counter() -> None:
    a = attach()
    a.session.put_configuration(Slot.TWO, hotp_config(RFC4226_SEED, digits=8, initial_counter=16))
    assert a.device.touch(slot=2) == f"{_hotp(RFC4226_SEED, 16, 8):08d}\n"
    assert a.device.hotp_counter(2) == 17


def _hotp(seed: bytes, counter: int, digits: int) -> int:
    mac = hmac.new(seed, counter.to_bytes(8, "big"), hashlib.sha1).digest()
    off = mac[-1] & 0xF
    return (int.from_bytes(mac[off : off + 4], "big") & 0x7FFFFFFF) % 10**digits


def test_token_id_is_typed_before_the_code() -> None:
    a = attach()
    config = hotp_config(RFC4226_SEED, token_id=b"\x01\x02\x12\x34\x56\x78")
    a.session.put_configuration(Slot.ONE, config)
    assert a.device.touch() == "cbcd12345678755224\n"


def test_hmac_sha1_nist_vector_and_short_challenges() -> None:
    a = attach()
    a.session.put_configuration(Slot.TWO, hmac_sha1_config(NIST_KEY))
    assert not a.session.status().is_touch_triggered(Slot.TWO)
    assert (
        a.session.calculate_hmac_sha1(Slot.TWO, b"Sample #2").hex()
        == "0922d3405faa3d194f82a45830737d5cc6c75d24"
    )
    for challenge in (b"", b"\0", b"ends in zero\0", bytes(range(63)), b"x" * 63):
        expected = hmac.new(NIST_KEY, challenge, hashlib.sha1).digest()
        assert a.session.calculate_hmac_sha1(Slot.TWO, challenge) == expected
    with pytest.raises(InvalidConfigError):
        a.session.calculate_hmac_sha1(Slot.TWO, bytes(64))


def test_hmac_requiring_touch_waits_for_the_button() -> None:
    a = attach()
    a.session.put_configuration(Slot.ONE, hmac_sha1_config(NIST_KEY, require_touch=True))
    result: dict[str, bytes] = {}
    worker = threading.Thread(
        target=lambda: result.update(r=a.session.calculate_hmac_sha1(Slot.ONE, b"hi"))
    )
    worker.start()
    wait_for(lambda: a.device.waiting_for_touch)
    assert a.device.touch() == ""  # completes the pending challenge, types nothing
    joined(worker, 30)
    assert result["r"] == hmac.new(NIST_KEY, b"hi", hashlib.sha1).digest()


def test_hmac_without_touch_times_out() -> None:
    a = attach(touch_timeout=0.2)
    a.session.put_configuration(Slot.ONE, hmac_sha1_config(NIST_KEY, require_touch=True))
    from devices.hid_otp.errors import ProtocolTimeoutError

    with pytest.raises(ProtocolTimeoutError, match="touch"):
        a.session.calculate_hmac_sha1(Slot.ONE, b"hi")
    # The device is usable afterwards.
    assert a.session.serial() == a.device.serial


def test_challenge_on_empty_or_hotp_slot() -> None:
    a = attach()
    with pytest.raises(SlotNotConfiguredError, match="slot 2"):
        a.session.calculate_hmac_sha1(Slot.TWO, b"x")
    a.session.put_configuration(Slot.ONE, hotp_config(RFC4226_SEED))
    with pytest.raises(CommandRejectedError, match="challenge-response"):
        a.session.calculate_hmac_sha1(Slot.ONE, b"x")


def test_access_code_protects_the_slot() -> None:
    a = attach()
    a.session.put_configuration(Slot.ONE, hotp_config(RFC4226_SEED, access_code=b"123456"))
    before = (a.device.pgm_seq, a.device.slots[1])
    with pytest.raises(AccessCodeError, match="slot 1"):
        a.session.put_configuration(Slot.ONE, hotp_config(bytes(20)))
    with pytest.raises(AccessCodeError):
        a.session.delete_slot(Slot.ONE, access_code=b"654321")
    assert (a.device.pgm_seq, a.device.slots[1]) == before
    assert a.device.touch() == "755224\n"  # still the original seed
    a.session.delete_slot(Slot.ONE, access_code=b"123456")
    status = a.session.status()
    assert not status.is_configured(Slot.ONE)
    assert status.pgm_seq == 0  # no valid configuration left


def test_update_changes_flags_and_access_code_only() -> None:
    a = attach()
    a.session.put_configuration(Slot.ONE, hotp_config(RFC4226_SEED))
    update = SlotConfig(
        access_code=b"abcdef",
        ext_flags=ExtFlag.SERIAL_API_VISIBLE | ExtFlag.ALLOW_UPDATE,
        tkt_flags=0,
    )
    a.session.update_configuration(Slot.ONE, update)
    assert a.device.slots[1] is not None and a.device.slots[1].access_code == b"abcdef"
    assert not a.device.slots[1].tkt & TktFlag.APPEND_CR
    assert a.device.touch() == "755224"  # same seed, no Enter any more
    with pytest.raises(AccessCodeError):
        a.session.delete_slot(Slot.ONE)
    with pytest.raises(SlotNotConfiguredError):
        a.session.update_configuration(Slot.TWO, update)


def test_swap_slots() -> None:
    a = attach()
    a.session.put_configuration(Slot.ONE, hotp_config(RFC4226_SEED))
    a.session.put_configuration(Slot.TWO, hmac_sha1_config(NIST_KEY))
    seq = a.session.status().pgm_seq
    a.session.swap_slots()
    status = a.session.status()
    assert status.pgm_seq == seq + 1
    assert status.is_touch_triggered(Slot.TWO) and not status.is_touch_triggered(Slot.ONE)
    assert a.session.calculate_hmac_sha1(Slot.ONE, b"Sample #2").hex().startswith("0922d340")
    assert a.device.touch(slot=2) == "755224\n"


def test_swap_refused_with_access_code() -> None:
    a = attach()
    a.session.put_configuration(Slot.TWO, hmac_sha1_config(NIST_KEY, access_code=b"qwerty"))
    with pytest.raises(AccessCodeError, match="the device"):
        a.session.swap_slots()
    assert a.device.slots[1] is None
    a.session.swap_slots(access_code=b"qwerty")
    assert a.device.slots[2] is None and a.device.slots[1] is not None


def test_processing_delay_keeps_write_flag_set() -> None:
    a = attach(processing_delay=0.05)
    start = time.monotonic()
    a.session.put_configuration(Slot.ONE, hotp_config(RFC4226_SEED))
    assert time.monotonic() - start >= 0.05
    assert a.session.serial() == a.device.serial


def test_several_devices_at_once() -> None:
    bus = SimulatorBus()
    devices = [attach(bus, serial=20_000_000 + i) for i in range(4)]
    errors: list[BaseException] = []

    def program(i: int) -> None:
        try:
            seed = bytes([i]) * 20
            devices[i].session.put_configuration(Slot.ONE, hotp_config(seed))
            assert devices[i].session.serial() == 20_000_000 + i
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=program, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, a in enumerate(devices):
        assert a.device.touch() == f"{_hotp(bytes([i]) * 20, 0, 6):06d}\n"


def test_programming_sequence_wraps_after_255() -> None:
    a = attach()
    a.device.pgm_seq = 254
    a.session.put_configuration(Slot.ONE, hotp_config(RFC4226_SEED))
    a.session.put_configuration(Slot.TWO, hmac_sha1_config(NIST_KEY))
    assert a.session.status().pgm_seq == 0 and a.device.slots[2] is not None
    a.session.swap_slots()
    assert a.session.status().pgm_seq == 1
