"""The same protocol code against a real YubiKey-compatible OTP device through hidapi (hidraw).

Opt in: ``pytest --hardware tests/hardware/test_hid_otp_hardware.py``. With several devices
attached, choose one with ``AUTHD_HID_SERIAL``. Tests that write touch only slot 2 and need
``AUTHD_HID_WRITE_SLOT2=1``: they overwrite and then delete slot 2's configuration.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterator

import pytest

from devices.hid_otp import HidOtpSession, Slot, hmac_sha1_config, hotp_config
from devices.hid_otp.errors import AccessCodeError
from drivers.hid import HidapiBackend, OtpHidConnection, list_devices

pytestmark = pytest.mark.hardware

NIST_KEY = bytes(range(0x30, 0x44))


@pytest.fixture
def session() -> Iterator[HidOtpSession]:
    backend = HidapiBackend()
    infos = list_devices(backend)
    if not infos:
        pytest.skip("no OTP HID device attached")
    wanted = os.environ.get("AUTHD_HID_SERIAL")
    for info in infos:
        connection = OtpHidConnection.open(backend, info.path)
        session = HidOtpSession(connection)
        if wanted is None or str(session.serial()) == wanted:
            try:
                yield session
            finally:
                connection.close()
            return
        connection.close()
    pytest.skip(f"no attached device has serial {wanted}")


@pytest.fixture
def writable(session: HidOtpSession) -> HidOtpSession:
    if os.environ.get("AUTHD_HID_WRITE_SLOT2") != "1":
        pytest.skip("set AUTHD_HID_WRITE_SLOT2=1 to let tests overwrite slot 2")
    return session


def test_status_and_serial(session: HidOtpSession) -> None:
    status = session.status()
    assert status.version[0] >= 2
    assert session.serial() > 0


def test_hmac_challenge_response_nist_vector(writable: HidOtpSession) -> None:
    writable.put_configuration(Slot.TWO, hmac_sha1_config(NIST_KEY))
    try:
        answer = writable.calculate_hmac_sha1(Slot.TWO, b"Sample #2")
        assert answer.hex() == "0922d3405faa3d194f82a45830737d5cc6c75d24"
        challenge = os.urandom(32)
        expected = hmac.new(NIST_KEY, challenge, hashlib.sha1).digest()
        assert writable.calculate_hmac_sha1(Slot.TWO, challenge) == expected
    finally:
        writable.delete_slot(Slot.TWO)
    assert not writable.status().is_configured(Slot.TWO)


def test_access_code_protects_slot(writable: HidOtpSession) -> None:
    code = b"\x11\x22\x33\x44\x55\x66"
    writable.put_configuration(Slot.TWO, hotp_config(os.urandom(20), access_code=code))
    try:
        with pytest.raises(AccessCodeError):
            writable.delete_slot(Slot.TWO)
        assert writable.status().is_configured(Slot.TWO)
    finally:
        writable.delete_slot(Slot.TWO, access_code=code)
    assert not writable.status().is_configured(Slot.TWO)
