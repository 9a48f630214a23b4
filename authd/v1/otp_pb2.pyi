from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OtpKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OTP_KIND_UNSPECIFIED: _ClassVar[OtpKind]
    OTP_KIND_TOTP: _ClassVar[OtpKind]
    OTP_KIND_HOTP: _ClassVar[OtpKind]

class OtpAlgorithm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OTP_ALGORITHM_UNSPECIFIED: _ClassVar[OtpAlgorithm]
    OTP_ALGORITHM_SHA1: _ClassVar[OtpAlgorithm]
    OTP_ALGORITHM_SHA256: _ClassVar[OtpAlgorithm]
    OTP_ALGORITHM_SHA512: _ClassVar[OtpAlgorithm]

class DeviceState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEVICE_STATE_UNSPECIFIED: _ClassVar[DeviceState]
    DEVICE_STATE_ACTIVE: _ClassVar[DeviceState]
    DEVICE_STATE_LOCKED: _ClassVar[DeviceState]
    DEVICE_STATE_REPORTED_LOST: _ClassVar[DeviceState]
    DEVICE_STATE_REPLACED: _ClassVar[DeviceState]
    DEVICE_STATE_EXPIRED: _ClassVar[DeviceState]

class VerifyOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERIFY_OUTCOME_UNSPECIFIED: _ClassVar[VerifyOutcome]
    VERIFY_OUTCOME_ACCEPTED: _ClassVar[VerifyOutcome]
    VERIFY_OUTCOME_WRONG_CODE: _ClassVar[VerifyOutcome]
    VERIFY_OUTCOME_LOCKED: _ClassVar[VerifyOutcome]
    VERIFY_OUTCOME_REPORTED_LOST: _ClassVar[VerifyOutcome]
    VERIFY_OUTCOME_NOT_REGISTERED: _ClassVar[VerifyOutcome]
    VERIFY_OUTCOME_EXPIRED_OR_REPLACED: _ClassVar[VerifyOutcome]
    VERIFY_OUTCOME_REPLAYED: _ClassVar[VerifyOutcome]

class RegistrationChannel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REGISTRATION_CHANNEL_UNSPECIFIED: _ClassVar[RegistrationChannel]
    REGISTRATION_CHANNEL_BRANCH: _ClassVar[RegistrationChannel]
    REGISTRATION_CHANNEL_ONLINE: _ClassVar[RegistrationChannel]

class ReplaceReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPLACE_REASON_UNSPECIFIED: _ClassVar[ReplaceReason]
    REPLACE_REASON_REISSUE: _ClassVar[ReplaceReason]
    REPLACE_REASON_WARRANTY_EXPIRED: _ClassVar[ReplaceReason]
OTP_KIND_UNSPECIFIED: OtpKind
OTP_KIND_TOTP: OtpKind
OTP_KIND_HOTP: OtpKind
OTP_ALGORITHM_UNSPECIFIED: OtpAlgorithm
OTP_ALGORITHM_SHA1: OtpAlgorithm
OTP_ALGORITHM_SHA256: OtpAlgorithm
OTP_ALGORITHM_SHA512: OtpAlgorithm
DEVICE_STATE_UNSPECIFIED: DeviceState
DEVICE_STATE_ACTIVE: DeviceState
DEVICE_STATE_LOCKED: DeviceState
DEVICE_STATE_REPORTED_LOST: DeviceState
DEVICE_STATE_REPLACED: DeviceState
DEVICE_STATE_EXPIRED: DeviceState
VERIFY_OUTCOME_UNSPECIFIED: VerifyOutcome
VERIFY_OUTCOME_ACCEPTED: VerifyOutcome
VERIFY_OUTCOME_WRONG_CODE: VerifyOutcome
VERIFY_OUTCOME_LOCKED: VerifyOutcome
VERIFY_OUTCOME_REPORTED_LOST: VerifyOutcome
VERIFY_OUTCOME_NOT_REGISTERED: VerifyOutcome
VERIFY_OUTCOME_EXPIRED_OR_REPLACED: VerifyOutcome
VERIFY_OUTCOME_REPLAYED: VerifyOutcome
REGISTRATION_CHANNEL_UNSPECIFIED: RegistrationChannel
REGISTRATION_CHANNEL_BRANCH: RegistrationChannel
REGISTRATION_CHANNEL_ONLINE: RegistrationChannel
REPLACE_REASON_UNSPECIFIED: ReplaceReason
REPLACE_REASON_REISSUE: ReplaceReason
REPLACE_REASON_WARRANTY_EXPIRED: ReplaceReason

class OtpParameters(_message.Message):
    __slots__ = ("kind", "digits", "period_seconds", "algorithm", "counter")
    KIND_FIELD_NUMBER: _ClassVar[int]
    DIGITS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    COUNTER_FIELD_NUMBER: _ClassVar[int]
    kind: OtpKind
    digits: int
    period_seconds: int
    algorithm: OtpAlgorithm
    counter: int
    def __init__(self, kind: _Optional[_Union[OtpKind, str]] = ..., digits: _Optional[int] = ..., period_seconds: _Optional[int] = ..., algorithm: _Optional[_Union[OtpAlgorithm, str]] = ..., counter: _Optional[int] = ...) -> None: ...

class EnrollRequest(_message.Message):
    __slots__ = ("serial", "parameters", "seed", "operator_id", "warranty_until", "customer_id")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    WARRANTY_UNTIL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    serial: str
    parameters: OtpParameters
    seed: bytes
    operator_id: str
    warranty_until: float
    customer_id: str
    def __init__(self, serial: _Optional[str] = ..., parameters: _Optional[_Union[OtpParameters, _Mapping]] = ..., seed: _Optional[bytes] = ..., operator_id: _Optional[str] = ..., warranty_until: _Optional[float] = ..., customer_id: _Optional[str] = ...) -> None: ...

class EnrollResponse(_message.Message):
    __slots__ = ("device", "generated_seed", "provisioning_uri")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    GENERATED_SEED_FIELD_NUMBER: _ClassVar[int]
    PROVISIONING_URI_FIELD_NUMBER: _ClassVar[int]
    device: DeviceStatus
    generated_seed: bytes
    provisioning_uri: str
    def __init__(self, device: _Optional[_Union[DeviceStatus, _Mapping]] = ..., generated_seed: _Optional[bytes] = ..., provisioning_uri: _Optional[str] = ...) -> None: ...

class RegisterRequest(_message.Message):
    __slots__ = ("serial", "strong_authentication", "operator_id", "code", "customer_id", "master_administrator")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    STRONG_AUTHENTICATION_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    MASTER_ADMINISTRATOR_FIELD_NUMBER: _ClassVar[int]
    serial: str
    strong_authentication: bool
    operator_id: str
    code: str
    customer_id: str
    master_administrator: bool
    def __init__(self, serial: _Optional[str] = ..., strong_authentication: _Optional[bool] = ..., operator_id: _Optional[str] = ..., code: _Optional[str] = ..., customer_id: _Optional[str] = ..., master_administrator: _Optional[bool] = ...) -> None: ...

class DeregisterRequest(_message.Message):
    __slots__ = ("serial", "operator_id", "reason")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    serial: str
    operator_id: str
    reason: str
    def __init__(self, serial: _Optional[str] = ..., operator_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class VerifyRequest(_message.Message):
    __slots__ = ("serial", "code", "request_id", "idempotency_key")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    serial: str
    code: str
    request_id: str
    idempotency_key: str
    def __init__(self, serial: _Optional[str] = ..., code: _Optional[str] = ..., request_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class VerifyResponse(_message.Message):
    __slots__ = ("outcome", "consecutive_failures", "attempts_left", "message", "request_id", "error")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_LEFT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    outcome: VerifyOutcome
    consecutive_failures: int
    attempts_left: int
    message: str
    request_id: str
    error: _status_pb2.Status
    def __init__(self, outcome: _Optional[_Union[VerifyOutcome, str]] = ..., consecutive_failures: _Optional[int] = ..., attempts_left: _Optional[int] = ..., message: _Optional[str] = ..., request_id: _Optional[str] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class VerifyBatchRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[VerifyRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[VerifyRequest, _Mapping]]] = ...) -> None: ...

class VerifyBatchResponse(_message.Message):
    __slots__ = ("responses",)
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[VerifyResponse]
    def __init__(self, responses: _Optional[_Iterable[_Union[VerifyResponse, _Mapping]]] = ...) -> None: ...

class UnlockRequest(_message.Message):
    __slots__ = ("serial", "operator_id", "reason")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    serial: str
    operator_id: str
    reason: str
    def __init__(self, serial: _Optional[str] = ..., operator_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ReportLostRequest(_message.Message):
    __slots__ = ("serial", "reason")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    serial: str
    reason: str
    def __init__(self, serial: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class WithdrawLossReportRequest(_message.Message):
    __slots__ = ("serial", "operator_id", "reason")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    serial: str
    operator_id: str
    reason: str
    def __init__(self, serial: _Optional[str] = ..., operator_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ReplaceRequest(_message.Message):
    __slots__ = ("old_serial", "new_serial", "reason", "parameters", "seed", "operator_id")
    OLD_SERIAL_FIELD_NUMBER: _ClassVar[int]
    NEW_SERIAL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    old_serial: str
    new_serial: str
    reason: ReplaceReason
    parameters: OtpParameters
    seed: bytes
    operator_id: str
    def __init__(self, old_serial: _Optional[str] = ..., new_serial: _Optional[str] = ..., reason: _Optional[_Union[ReplaceReason, str]] = ..., parameters: _Optional[_Union[OtpParameters, _Mapping]] = ..., seed: _Optional[bytes] = ..., operator_id: _Optional[str] = ...) -> None: ...

class ReplaceResponse(_message.Message):
    __slots__ = ("old_device", "new_device", "generated_seed", "provisioning_uri")
    OLD_DEVICE_FIELD_NUMBER: _ClassVar[int]
    NEW_DEVICE_FIELD_NUMBER: _ClassVar[int]
    GENERATED_SEED_FIELD_NUMBER: _ClassVar[int]
    PROVISIONING_URI_FIELD_NUMBER: _ClassVar[int]
    old_device: DeviceStatus
    new_device: DeviceStatus
    generated_seed: bytes
    provisioning_uri: str
    def __init__(self, old_device: _Optional[_Union[DeviceStatus, _Mapping]] = ..., new_device: _Optional[_Union[DeviceStatus, _Mapping]] = ..., generated_seed: _Optional[bytes] = ..., provisioning_uri: _Optional[str] = ...) -> None: ...

class ResyncRequest(_message.Message):
    __slots__ = ("serial", "first_code", "second_code", "operator_id")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    FIRST_CODE_FIELD_NUMBER: _ClassVar[int]
    SECOND_CODE_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    serial: str
    first_code: str
    second_code: str
    operator_id: str
    def __init__(self, serial: _Optional[str] = ..., first_code: _Optional[str] = ..., second_code: _Optional[str] = ..., operator_id: _Optional[str] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ("serial",)
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    serial: str
    def __init__(self, serial: _Optional[str] = ...) -> None: ...

class AssignCustomerRequest(_message.Message):
    __slots__ = ("serial", "customer_id", "operator_id")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    serial: str
    customer_id: str
    operator_id: str
    def __init__(self, serial: _Optional[str] = ..., customer_id: _Optional[str] = ..., operator_id: _Optional[str] = ...) -> None: ...

class ImportDevicesRequest(_message.Message):
    __slots__ = ("pskc", "pre_shared_key", "password", "dry_run", "operator_id")
    PSKC_FIELD_NUMBER: _ClassVar[int]
    PRE_SHARED_KEY_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    pskc: bytes
    pre_shared_key: bytes
    password: str
    dry_run: bool
    operator_id: str
    def __init__(self, pskc: _Optional[bytes] = ..., pre_shared_key: _Optional[bytes] = ..., password: _Optional[str] = ..., dry_run: _Optional[bool] = ..., operator_id: _Optional[str] = ...) -> None: ...

class ImportedDevice(_message.Message):
    __slots__ = ("key_package", "key_id", "serial", "parameters", "warranty_until", "manufacturer", "drift_steps")
    KEY_PACKAGE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    WARRANTY_UNTIL_FIELD_NUMBER: _ClassVar[int]
    MANUFACTURER_FIELD_NUMBER: _ClassVar[int]
    DRIFT_STEPS_FIELD_NUMBER: _ClassVar[int]
    key_package: int
    key_id: str
    serial: str
    parameters: OtpParameters
    warranty_until: float
    manufacturer: str
    drift_steps: int
    def __init__(self, key_package: _Optional[int] = ..., key_id: _Optional[str] = ..., serial: _Optional[str] = ..., parameters: _Optional[_Union[OtpParameters, _Mapping]] = ..., warranty_until: _Optional[float] = ..., manufacturer: _Optional[str] = ..., drift_steps: _Optional[int] = ...) -> None: ...

class SkippedKeyPackage(_message.Message):
    __slots__ = ("key_package", "key_id", "serial", "reason")
    KEY_PACKAGE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    key_package: int
    key_id: str
    serial: str
    reason: str
    def __init__(self, key_package: _Optional[int] = ..., key_id: _Optional[str] = ..., serial: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ImportDevicesResponse(_message.Message):
    __slots__ = ("devices", "skipped", "dry_run", "file_sha256", "signature", "signer")
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    FILE_SHA256_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    SIGNER_FIELD_NUMBER: _ClassVar[int]
    devices: _containers.RepeatedCompositeFieldContainer[ImportedDevice]
    skipped: _containers.RepeatedCompositeFieldContainer[SkippedKeyPackage]
    dry_run: bool
    file_sha256: str
    signature: str
    signer: str
    def __init__(self, devices: _Optional[_Iterable[_Union[ImportedDevice, _Mapping]]] = ..., skipped: _Optional[_Iterable[_Union[SkippedKeyPackage, _Mapping]]] = ..., dry_run: _Optional[bool] = ..., file_sha256: _Optional[str] = ..., signature: _Optional[str] = ..., signer: _Optional[str] = ...) -> None: ...

class Registration(_message.Message):
    __slots__ = ("institution", "channel", "registered_at", "failures_here", "customer_id")
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    FAILURES_HERE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    institution: str
    channel: RegistrationChannel
    registered_at: float
    failures_here: int
    customer_id: str
    def __init__(self, institution: _Optional[str] = ..., channel: _Optional[_Union[RegistrationChannel, str]] = ..., registered_at: _Optional[float] = ..., failures_here: _Optional[int] = ..., customer_id: _Optional[str] = ...) -> None: ...

class DeviceStatus(_message.Message):
    __slots__ = ("serial", "state", "parameters", "consecutive_failures", "attempts_left", "issuer", "registrations", "replaced_by", "warranty_until", "updated_at")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_LEFT_FIELD_NUMBER: _ClassVar[int]
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    REGISTRATIONS_FIELD_NUMBER: _ClassVar[int]
    REPLACED_BY_FIELD_NUMBER: _ClassVar[int]
    WARRANTY_UNTIL_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    serial: str
    state: DeviceState
    parameters: OtpParameters
    consecutive_failures: int
    attempts_left: int
    issuer: str
    registrations: _containers.RepeatedCompositeFieldContainer[Registration]
    replaced_by: str
    warranty_until: float
    updated_at: float
    def __init__(self, serial: _Optional[str] = ..., state: _Optional[_Union[DeviceState, str]] = ..., parameters: _Optional[_Union[OtpParameters, _Mapping]] = ..., consecutive_failures: _Optional[int] = ..., attempts_left: _Optional[int] = ..., issuer: _Optional[str] = ..., registrations: _Optional[_Iterable[_Union[Registration, _Mapping]]] = ..., replaced_by: _Optional[str] = ..., warranty_until: _Optional[float] = ..., updated_at: _Optional[float] = ...) -> None: ...
