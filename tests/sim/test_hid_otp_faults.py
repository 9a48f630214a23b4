"""Malformed reports, wrong CRCs, timeouts and devices pulled mid-command: clear errors and
no partial state on the device."""

from __future__ import annotations

import threading

import pytest

from devices.hid_otp import HidOtpSession, Slot, Timeouts, hmac_sha1_config, hotp_config
from devices.hid_otp.errors import (
    CommandRejectedError,
    CrcMismatchError,
    MalformedReportError,
    ProtocolTimeoutError,
)
from devices.hid_otp.frame import build_frame, frame_reports
from drivers.errors import DeviceAbsent, DeviceIOError
from drivers.hid import OtpHidConnection, list_devices
from simulators.hid_otp import DeviceUnplugged, Fault
from tests.conftest import joined, wait_for

from .hid_otp_helpers import FAST, attach

SEED = b"12345678901234567890"
KEY = bytes(range(0x30, 0x44))


def test_response_with_wrong_crc() -> None:
    a = attach()
    a.device.inject(Fault.CORRUPT_RESPONSE)
    with pytest.raises(CrcMismatchError, match="CRC"):
        a.session.serial()
    assert a.session.serial() == a.device.serial  # read state was reset


def test_corrupted_hmac_response_is_not_returned() -> None:
    a = attach()
    a.session.put_configuration(Slot.TWO, hmac_sha1_config(KEY))
    a.device.inject(Fault.CORRUPT_RESPONSE)
    with pytest.raises(CrcMismatchError):
        a.session.calculate_hmac_sha1(Slot.TWO, b"challenge")


def test_short_feature_report() -> None:
    a = attach()
    a.device.inject(Fault.SHORT_REPORT)
    with pytest.raises(MalformedReportError, match="5 bytes"):
        a.session.status()
    assert a.session.status().version == a.device.version


def test_response_chunk_skipped() -> None:
    a = attach()
    a.session.put_configuration(Slot.TWO, hmac_sha1_config(KEY))
    a.device.inject(Fault.SKIP_RESPONSE_CHUNK)
    with pytest.raises(MalformedReportError, match="chunk 2 arrived before chunk 1"):
        a.session.calculate_hmac_sha1(Slot.TWO, b"challenge")
    assert len(a.session.calculate_hmac_sha1(Slot.TWO, b"challenge")) == 20


def test_frame_with_wrong_crc_is_ignored_by_the_device() -> None:
    a = attach()
    frame = bytearray(build_frame(0x01, bytes(hotp_config(SEED)) + bytes(6)))
    frame[65] ^= 0xFF  # break the frame CRC
    for report in frame_reports(bytes(frame)):
        a.connection.send(report)
    assert a.device.frames_rejected == 1
    assert a.device.slots[1] is None and a.device.pgm_seq == 0


def test_rejected_config_write_is_reported() -> None:
    a = attach()
    broken = bytearray(bytes(hotp_config(SEED)))
    broken[-1] ^= 0x55  # config CRC no longer checks: the device refuses it
    with pytest.raises(CommandRejectedError):
        a.session.protocol.transceive(0x01, bytes(broken) + bytes(6))
    assert a.device.slots[1] is None


def test_device_slower_than_the_timeout() -> None:
    a = attach(processing_delay=0.3, timeouts=Timeouts(response=0.05, poll_max=0.005))
    with pytest.raises(ProtocolTimeoutError, match="processing"):
        a.session.serial()
    patient = HidOtpSession(a.connection, Timeouts(response=1.0, poll_max=0.005))
    assert patient.serial() == a.device.serial


def test_device_that_never_clears_its_write_flag() -> None:
    a = attach(processing_delay=5.0, timeouts=Timeouts(write_ready=0.05, response=0.05))
    with pytest.raises(ProtocolTimeoutError):
        a.session.serial()  # the device is now busy for 5 s
    with pytest.raises(ProtocolTimeoutError, match="write flag"):
        a.session.serial()


def test_host_that_ignores_the_write_flag_loses_reports() -> None:
    a = attach(processing_delay=0.2)
    first = frame_reports(build_frame(0x10))
    for report in first:
        a.connection.send(report)
    # A second command sent without waiting: the busy device drops its reports.
    for report in frame_reports(build_frame(0x01, bytes(hotp_config(SEED)) + bytes(6))):
        a.connection.send(report)
    wait_for(lambda: not a.device.processing)  # the first command, done
    a.session.protocol.reset()
    assert a.device.slots[1] is None and a.device.pgm_seq == 0
    a.session.put_configuration(Slot.ONE, hotp_config(SEED))  # waiting for the flag works
    assert a.device.slots[1] is not None


@pytest.mark.parametrize("operations", [0, 1, 3, 5, 8])
def test_device_pulled_mid_command(operations: int) -> None:
    a = attach()
    a.device.pull_after(operations)
    with pytest.raises(DeviceAbsent, match="removed"):
        a.session.put_configuration(Slot.ONE, hotp_config(SEED))
    assert list_devices(a.bus) == []
    assert a.device.slots[1] is None and a.device.pgm_seq == 0  # nothing half-written
    # Plugged in again, it appears at a new path and works.
    path = a.bus.plug(a.device)
    assert path != a.path
    session = HidOtpSession(OtpHidConnection.open(a.bus, path), FAST)
    session.put_configuration(Slot.ONE, hotp_config(SEED))
    assert a.device.touch() == "755224\n"


def test_device_pulled_while_processing_loses_the_command() -> None:
    # the device processes until it is pulled; the host waits for it as long
    a = attach(processing_delay=60, timeouts=Timeouts(write_ready=60, response=60))
    errors: list[BaseException] = []

    def program() -> None:
        try:
            a.session.put_configuration(Slot.ONE, hotp_config(SEED))
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=program)
    worker.start()
    wait_for(lambda: a.device.processing)
    a.bus.unplug(a.path)
    joined(worker, 30)
    assert len(errors) == 1 and isinstance(errors[0], DeviceAbsent)
    assert a.device.slots[1] is None


def test_closed_connection_and_vanished_path() -> None:
    a = attach()
    a.connection.close()
    with pytest.raises(DeviceIOError, match="closed"):
        a.connection.receive()
    a.bus.unplug(a.device)
    with pytest.raises(DeviceAbsent):
        OtpHidConnection.open(a.bus, a.path)


def test_io_error_on_a_present_device_is_not_absence() -> None:
    class Flaky:
        def send_feature_report(self, data: bytes) -> int:
            return -1

        def get_feature_report(self, report_num: int, max_length: int) -> list[int]:
            raise OSError("read error")

        def read(self, max_length: int, timeout_ms: int = 0) -> list[int]:
            raise DeviceUnplugged("gone")

        def write(self, data: bytes) -> int:
            return 0

        def close(self) -> None:
            pass

    connection = OtpHidConnection(Flaky())
    with pytest.raises(DeviceIOError, match="write"):
        connection.send(bytes(8))
    with pytest.raises(DeviceIOError, match="read"):
        connection.receive()
    with pytest.raises(ValueError):
        connection.send(bytes(7))
