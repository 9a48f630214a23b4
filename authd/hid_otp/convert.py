"""Proto <-> domain conversion for the HID area."""

from __future__ import annotations

from authd import validate
from authd.enums import EnumMap
from authd.hid_otp.center import ProvisioningRecord, Reservation, ReserveRequest
from authd.hid_otp.service import DeviceView, Identification, Provisioned, ProvisionRequest
from authd.v1 import hid_otp_pb2
from devices.errors import BadRequest
from devices.hid_otp import Slot
from devices.hid_otp.constants import ACC_CODE_SIZE

MAX_SERIAL = 0xFFFFFFFF
MAX_OPERATOR = 64

IDENTIFY_OUTCOME = EnumMap("outcome", {
    "identified": hid_otp_pb2.HID_IDENTIFY_OUTCOME_IDENTIFIED,
    "mismatch": hid_otp_pb2.HID_IDENTIFY_OUTCOME_MISMATCH,
    "not-provisioned": hid_otp_pb2.HID_IDENTIFY_OUTCOME_NOT_PROVISIONED,
    "no-identification-key": hid_otp_pb2.HID_IDENTIFY_OUTCOME_NO_IDENTIFICATION_KEY,
})


def device_serial(value: int) -> int:
    if not 0 < value <= MAX_SERIAL:
        raise BadRequest("device_serial is required")
    return value


def access_code(text: str) -> bytes | None:
    if not text:
        return None
    try:
        code = bytes.fromhex(text)
    except ValueError:
        raise BadRequest("current_access_code must be hex digits") from None
    if len(code) != ACC_CODE_SIZE:
        raise BadRequest(f"current_access_code must be {ACC_CODE_SIZE * 2} hex digits")
    return code


def operator_id(text: str) -> str:
    text = text.strip()
    if not text or len(text) > MAX_OPERATOR or not text.isprintable():
        raise BadRequest(f"operator_id is required (1..{MAX_OPERATOR} characters)")
    return text


def provision_request(msg: hid_otp_pb2.ProvisionHidDeviceRequest) -> ProvisionRequest:
    operator = operator_id(msg.operator_id)
    customer_id = validate.customer_ref(msg.customer_id)
    digits = msg.digits or 6
    if digits not in (6, 8):
        raise BadRequest("digits must be 6 or 8")
    return ProvisionRequest(
        device_serial=device_serial(msg.device_serial),
        digits=digits,
        overwrite=msg.overwrite,
        identification=not msg.without_identification,
        current_access_code=access_code(msg.current_access_code),
        operator=operator,
        customer_id=customer_id,
    )


def provisioned(result: Provisioned) -> hid_otp_pb2.ProvisionHidDeviceResponse:
    return hid_otp_pb2.ProvisionHidDeviceResponse(
        device_serial=result.device_serial,
        otp_serial=result.otp_serial,
        digits=result.digits,
        institution=result.institution,
        identification=result.identification,
        firmware=result.firmware,
        customer_id=result.customer_id,
    )


def device_view(view: DeviceView) -> hid_otp_pb2.HidDevice:
    a = view.attached
    msg = hid_otp_pb2.HidDevice(
        path=a.info.path.decode("utf-8", "replace"),
        vendor_id=a.info.vendor_id,
        product_id=a.info.product_id,
        device_serial=a.serial,
        error=a.error,
        record_as_of=view.as_of,
    )
    if a.status is not None:
        msg.firmware = ".".join(str(v) for v in a.status.version)
        msg.slot1_configured = a.status.is_configured(Slot.ONE)
        msg.slot2_configured = a.status.is_configured(Slot.TWO)
    if view.provisioned is not None:
        msg.provisioned = True
        msg.otp_serial = view.provisioned.otp_serial
        msg.institution = view.provisioned.institution
    return msg


def identification(result: Identification) -> hid_otp_pb2.IdentifyHidDeviceResponse:
    msg = hid_otp_pb2.IdentifyHidDeviceResponse(
        outcome=IDENTIFY_OUTCOME.to_pb(result.outcome), device_serial=result.device_serial,
        record_as_of=result.as_of, from_branch_copy=result.from_copy,
        center_error=result.center_error,
    )
    if result.device is not None:
        msg.otp_serial = result.device.otp_serial
        msg.institution = result.device.institution
        msg.provisioned_at = result.device.provisioned_at
    return msg


# --- the center's side (authd.v1.HidOtpCenterService) ------------------------------------------


def reserve_request(msg: hid_otp_pb2.ReserveHidProvisioningRequest) -> ReserveRequest:
    return ReserveRequest(
        provisioning_id=msg.provisioning_id,
        device_serial=device_serial(msg.device_serial),
        digits=msg.digits or 6,
        identification=msg.identification,
        firmware=validate.text(msg.firmware, "firmware", max_length=16),
        operator=validate.text(msg.operator_id, "operator_id", max_length=MAX_OPERATOR),
        customer_id=validate.customer_ref(msg.customer_id),
    )


def reservation(r: Reservation) -> hid_otp_pb2.HidProvisioningReservation:
    return hid_otp_pb2.HidProvisioningReservation(
        provisioning_id=r.provisioning_id, otp_serial=r.otp_serial, seed=r.seed,
        identification_key=r.ident_key or b"", access_code=r.access_code,
        expires_at=r.expires_at, ttl_seconds=r.ttl)


def record(r: ProvisioningRecord) -> hid_otp_pb2.HidProvisioningRecord:
    return hid_otp_pb2.HidProvisioningRecord(
        device_serial=r.device_serial, otp_serial=r.otp_serial, institution=r.institution,
        firmware=r.firmware, digits=r.digits, identification=r.identification,
        provisioned_at=r.provisioned_at)
