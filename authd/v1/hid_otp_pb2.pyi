from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HidIdentifyOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HID_IDENTIFY_OUTCOME_UNSPECIFIED: _ClassVar[HidIdentifyOutcome]
    HID_IDENTIFY_OUTCOME_IDENTIFIED: _ClassVar[HidIdentifyOutcome]
    HID_IDENTIFY_OUTCOME_MISMATCH: _ClassVar[HidIdentifyOutcome]
    HID_IDENTIFY_OUTCOME_NOT_PROVISIONED: _ClassVar[HidIdentifyOutcome]
    HID_IDENTIFY_OUTCOME_NO_IDENTIFICATION_KEY: _ClassVar[HidIdentifyOutcome]
HID_IDENTIFY_OUTCOME_UNSPECIFIED: HidIdentifyOutcome
HID_IDENTIFY_OUTCOME_IDENTIFIED: HidIdentifyOutcome
HID_IDENTIFY_OUTCOME_MISMATCH: HidIdentifyOutcome
HID_IDENTIFY_OUTCOME_NOT_PROVISIONED: HidIdentifyOutcome
HID_IDENTIFY_OUTCOME_NO_IDENTIFICATION_KEY: HidIdentifyOutcome

class ListHidDevicesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HidDevice(_message.Message):
    __slots__ = ("path", "vendor_id", "product_id", "device_serial", "firmware", "slot1_configured", "slot2_configured", "provisioned", "otp_serial", "institution", "error", "record_as_of")
    PATH_FIELD_NUMBER: _ClassVar[int]
    VENDOR_ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    FIRMWARE_FIELD_NUMBER: _ClassVar[int]
    SLOT1_CONFIGURED_FIELD_NUMBER: _ClassVar[int]
    SLOT2_CONFIGURED_FIELD_NUMBER: _ClassVar[int]
    PROVISIONED_FIELD_NUMBER: _ClassVar[int]
    OTP_SERIAL_FIELD_NUMBER: _ClassVar[int]
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RECORD_AS_OF_FIELD_NUMBER: _ClassVar[int]
    path: str
    vendor_id: int
    product_id: int
    device_serial: int
    firmware: str
    slot1_configured: bool
    slot2_configured: bool
    provisioned: bool
    otp_serial: str
    institution: str
    error: str
    record_as_of: float
    def __init__(self, path: _Optional[str] = ..., vendor_id: _Optional[int] = ..., product_id: _Optional[int] = ..., device_serial: _Optional[int] = ..., firmware: _Optional[str] = ..., slot1_configured: _Optional[bool] = ..., slot2_configured: _Optional[bool] = ..., provisioned: _Optional[bool] = ..., otp_serial: _Optional[str] = ..., institution: _Optional[str] = ..., error: _Optional[str] = ..., record_as_of: _Optional[float] = ...) -> None: ...

class ListHidDevicesResponse(_message.Message):
    __slots__ = ("devices", "from_branch_copy", "center_error")
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    FROM_BRANCH_COPY_FIELD_NUMBER: _ClassVar[int]
    CENTER_ERROR_FIELD_NUMBER: _ClassVar[int]
    devices: _containers.RepeatedCompositeFieldContainer[HidDevice]
    from_branch_copy: bool
    center_error: str
    def __init__(self, devices: _Optional[_Iterable[_Union[HidDevice, _Mapping]]] = ..., from_branch_copy: _Optional[bool] = ..., center_error: _Optional[str] = ...) -> None: ...

class ProvisionHidDeviceRequest(_message.Message):
    __slots__ = ("device_serial", "digits", "overwrite", "without_identification", "current_access_code", "operator_id", "customer_id")
    DEVICE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    DIGITS_FIELD_NUMBER: _ClassVar[int]
    OVERWRITE_FIELD_NUMBER: _ClassVar[int]
    WITHOUT_IDENTIFICATION_FIELD_NUMBER: _ClassVar[int]
    CURRENT_ACCESS_CODE_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    device_serial: int
    digits: int
    overwrite: bool
    without_identification: bool
    current_access_code: str
    operator_id: str
    customer_id: str
    def __init__(self, device_serial: _Optional[int] = ..., digits: _Optional[int] = ..., overwrite: _Optional[bool] = ..., without_identification: _Optional[bool] = ..., current_access_code: _Optional[str] = ..., operator_id: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class ProvisionHidDeviceResponse(_message.Message):
    __slots__ = ("device_serial", "otp_serial", "digits", "institution", "identification", "firmware", "customer_id")
    DEVICE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    OTP_SERIAL_FIELD_NUMBER: _ClassVar[int]
    DIGITS_FIELD_NUMBER: _ClassVar[int]
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    IDENTIFICATION_FIELD_NUMBER: _ClassVar[int]
    FIRMWARE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    device_serial: int
    otp_serial: str
    digits: int
    institution: str
    identification: bool
    firmware: str
    customer_id: str
    def __init__(self, device_serial: _Optional[int] = ..., otp_serial: _Optional[str] = ..., digits: _Optional[int] = ..., institution: _Optional[str] = ..., identification: _Optional[bool] = ..., firmware: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class IdentifyHidDeviceRequest(_message.Message):
    __slots__ = ("device_serial",)
    DEVICE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    device_serial: int
    def __init__(self, device_serial: _Optional[int] = ...) -> None: ...

class IdentifyHidDeviceResponse(_message.Message):
    __slots__ = ("outcome", "device_serial", "otp_serial", "institution", "provisioned_at", "record_as_of", "from_branch_copy", "center_error")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DEVICE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    OTP_SERIAL_FIELD_NUMBER: _ClassVar[int]
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    PROVISIONED_AT_FIELD_NUMBER: _ClassVar[int]
    RECORD_AS_OF_FIELD_NUMBER: _ClassVar[int]
    FROM_BRANCH_COPY_FIELD_NUMBER: _ClassVar[int]
    CENTER_ERROR_FIELD_NUMBER: _ClassVar[int]
    outcome: HidIdentifyOutcome
    device_serial: int
    otp_serial: str
    institution: str
    provisioned_at: float
    record_as_of: float
    from_branch_copy: bool
    center_error: str
    def __init__(self, outcome: _Optional[_Union[HidIdentifyOutcome, str]] = ..., device_serial: _Optional[int] = ..., otp_serial: _Optional[str] = ..., institution: _Optional[str] = ..., provisioned_at: _Optional[float] = ..., record_as_of: _Optional[float] = ..., from_branch_copy: _Optional[bool] = ..., center_error: _Optional[str] = ...) -> None: ...

class PlugSimulatedHidDeviceRequest(_message.Message):
    __slots__ = ("device_serial", "firmware", "processing_delay_ms")
    DEVICE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    FIRMWARE_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    device_serial: int
    firmware: str
    processing_delay_ms: int
    def __init__(self, device_serial: _Optional[int] = ..., firmware: _Optional[str] = ..., processing_delay_ms: _Optional[int] = ...) -> None: ...

class PlugSimulatedHidDeviceResponse(_message.Message):
    __slots__ = ("device_serial", "path")
    DEVICE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    device_serial: int
    path: str
    def __init__(self, device_serial: _Optional[int] = ..., path: _Optional[str] = ...) -> None: ...

class UnplugSimulatedHidDeviceRequest(_message.Message):
    __slots__ = ("device_serial",)
    DEVICE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    device_serial: int
    def __init__(self, device_serial: _Optional[int] = ...) -> None: ...

class UnplugSimulatedHidDeviceResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PressSimulatedHidButtonRequest(_message.Message):
    __slots__ = ("device_serial", "slot")
    DEVICE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    device_serial: int
    slot: int
    def __init__(self, device_serial: _Optional[int] = ..., slot: _Optional[int] = ...) -> None: ...

class PressSimulatedHidButtonResponse(_message.Message):
    __slots__ = ("typed",)
    TYPED_FIELD_NUMBER: _ClassVar[int]
    typed: str
    def __init__(self, typed: _Optional[str] = ...) -> None: ...

class GetSimulatedHidDeviceStateRequest(_message.Message):
    __slots__ = ("device_serial",)
    DEVICE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    device_serial: int
    def __init__(self, device_serial: _Optional[int] = ...) -> None: ...

class GetSimulatedHidDeviceStateResponse(_message.Message):
    __slots__ = ("processing",)
    PROCESSING_FIELD_NUMBER: _ClassVar[int]
    processing: bool
    def __init__(self, processing: _Optional[bool] = ...) -> None: ...

class ReserveHidProvisioningRequest(_message.Message):
    __slots__ = ("provisioning_id", "device_serial", "digits", "identification", "firmware", "operator_id", "customer_id")
    PROVISIONING_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    DIGITS_FIELD_NUMBER: _ClassVar[int]
    IDENTIFICATION_FIELD_NUMBER: _ClassVar[int]
    FIRMWARE_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    provisioning_id: str
    device_serial: int
    digits: int
    identification: bool
    firmware: str
    operator_id: str
    customer_id: str
    def __init__(self, provisioning_id: _Optional[str] = ..., device_serial: _Optional[int] = ..., digits: _Optional[int] = ..., identification: _Optional[bool] = ..., firmware: _Optional[str] = ..., operator_id: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class HidProvisioningReservation(_message.Message):
    __slots__ = ("provisioning_id", "otp_serial", "seed", "identification_key", "access_code", "expires_at", "ttl_seconds")
    PROVISIONING_ID_FIELD_NUMBER: _ClassVar[int]
    OTP_SERIAL_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    IDENTIFICATION_KEY_FIELD_NUMBER: _ClassVar[int]
    ACCESS_CODE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    provisioning_id: str
    otp_serial: str
    seed: bytes
    identification_key: bytes
    access_code: bytes
    expires_at: float
    ttl_seconds: float
    def __init__(self, provisioning_id: _Optional[str] = ..., otp_serial: _Optional[str] = ..., seed: _Optional[bytes] = ..., identification_key: _Optional[bytes] = ..., access_code: _Optional[bytes] = ..., expires_at: _Optional[float] = ..., ttl_seconds: _Optional[float] = ...) -> None: ...

class ConfirmHidProvisioningRequest(_message.Message):
    __slots__ = ("provisioning_id",)
    PROVISIONING_ID_FIELD_NUMBER: _ClassVar[int]
    provisioning_id: str
    def __init__(self, provisioning_id: _Optional[str] = ...) -> None: ...

class HidProvisioningRecord(_message.Message):
    __slots__ = ("device_serial", "otp_serial", "institution", "firmware", "digits", "identification", "provisioned_at")
    DEVICE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    OTP_SERIAL_FIELD_NUMBER: _ClassVar[int]
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    FIRMWARE_FIELD_NUMBER: _ClassVar[int]
    DIGITS_FIELD_NUMBER: _ClassVar[int]
    IDENTIFICATION_FIELD_NUMBER: _ClassVar[int]
    PROVISIONED_AT_FIELD_NUMBER: _ClassVar[int]
    device_serial: int
    otp_serial: str
    institution: str
    firmware: str
    digits: int
    identification: bool
    provisioned_at: float
    def __init__(self, device_serial: _Optional[int] = ..., otp_serial: _Optional[str] = ..., institution: _Optional[str] = ..., firmware: _Optional[str] = ..., digits: _Optional[int] = ..., identification: _Optional[bool] = ..., provisioned_at: _Optional[float] = ...) -> None: ...

class CancelHidProvisioningRequest(_message.Message):
    __slots__ = ("provisioning_id", "stage", "error", "device_restored")
    PROVISIONING_ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DEVICE_RESTORED_FIELD_NUMBER: _ClassVar[int]
    provisioning_id: str
    stage: str
    error: str
    device_restored: bool
    def __init__(self, provisioning_id: _Optional[str] = ..., stage: _Optional[str] = ..., error: _Optional[str] = ..., device_restored: _Optional[bool] = ...) -> None: ...

class CancelHidProvisioningResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetHidProvisioningRecordsRequest(_message.Message):
    __slots__ = ("device_serials",)
    DEVICE_SERIALS_FIELD_NUMBER: _ClassVar[int]
    device_serials: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, device_serials: _Optional[_Iterable[int]] = ...) -> None: ...

class GetHidProvisioningRecordsResponse(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[HidProvisioningRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[HidProvisioningRecord, _Mapping]]] = ...) -> None: ...

class CheckHidIdentificationRequest(_message.Message):
    __slots__ = ("device_serial", "challenge", "response")
    DEVICE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    device_serial: int
    challenge: bytes
    response: bytes
    def __init__(self, device_serial: _Optional[int] = ..., challenge: _Optional[bytes] = ..., response: _Optional[bytes] = ...) -> None: ...

class CheckHidIdentificationResponse(_message.Message):
    __slots__ = ("outcome", "record")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    outcome: HidIdentifyOutcome
    record: HidProvisioningRecord
    def __init__(self, outcome: _Optional[_Union[HidIdentifyOutcome, str]] = ..., record: _Optional[_Union[HidProvisioningRecord, _Mapping]] = ...) -> None: ...
