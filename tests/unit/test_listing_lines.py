"""What authctl prints for a signed seed file's import and for a HID listing a branch node
made from its copy of the center's records."""

from __future__ import annotations

from authd.ctl import when
from authd.hid_otp.cli import device_lines
from authd.otp.cli import import_lines
from authd.v1 import hid_otp_pb2 as H
from authd.v1 import otp_pb2 as O


def test_the_import_says_whose_certificate_verified_the_file():
    text = "\n".join(import_lines(O.ImportDevicesResponse(
        file_sha256="ab", signature="verified", signer="Acme")))
    assert "signature verified against Acme's certificate" in text
    assert "not checked" in "\n".join(import_lines(O.ImportDevicesResponse(
        signature="unchecked")))
    assert "signature" not in "\n".join(import_lines(O.ImportDevicesResponse(
        signature="none")))


def test_a_listing_from_the_branch_copy_gives_each_records_age():
    at = 1_790_000_000.0
    m = H.ListHidDevicesResponse(from_branch_copy=True, center_error="the center is down",
                                 devices=[
        H.HidDevice(device_serial=1, provisioned=True, otp_serial="HID-0000000001",
                    institution="bank-a", record_as_of=at),
        H.HidDevice(device_serial=2, record_as_of=at),
        H.HidDevice(device_serial=3)])
    text = "\n".join(device_lines(m))
    assert "the center cannot be asked" in text and "the center is down" in text
    assert f"provisioned by bank-a as OTP device HID-0000000001 (as of {when(at)})" in text
    assert f"not provisioned by authd (as of {when(at)})" in text
    assert "unknown here" in text
    online = "\n".join(device_lines(H.ListHidDevicesResponse(devices=[
        H.HidDevice(device_serial=2, record_as_of=at)])))
    assert "as of" not in online and "not provisioned by authd" in online
