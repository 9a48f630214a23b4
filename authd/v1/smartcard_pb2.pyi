from authd.v1 import customer_pb2 as _customer_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PivSlot(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PIV_SLOT_UNSPECIFIED: _ClassVar[PivSlot]
    PIV_SLOT_AUTHENTICATION: _ClassVar[PivSlot]
    PIV_SLOT_SIGNATURE: _ClassVar[PivSlot]
    PIV_SLOT_KEY_MANAGEMENT: _ClassVar[PivSlot]
    PIV_SLOT_CARD_AUTH: _ClassVar[PivSlot]

class KeyAlgorithm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KEY_ALGORITHM_UNSPECIFIED: _ClassVar[KeyAlgorithm]
    KEY_ALGORITHM_RSA2048: _ClassVar[KeyAlgorithm]
    KEY_ALGORITHM_EC_P256: _ClassVar[KeyAlgorithm]
    KEY_ALGORITHM_EC_P384: _ClassVar[KeyAlgorithm]
PIV_SLOT_UNSPECIFIED: PivSlot
PIV_SLOT_AUTHENTICATION: PivSlot
PIV_SLOT_SIGNATURE: PivSlot
PIV_SLOT_KEY_MANAGEMENT: PivSlot
PIV_SLOT_CARD_AUTH: PivSlot
KEY_ALGORITHM_UNSPECIFIED: KeyAlgorithm
KEY_ALGORITHM_RSA2048: KeyAlgorithm
KEY_ALGORITHM_EC_P256: KeyAlgorithm
KEY_ALGORITHM_EC_P384: KeyAlgorithm

class ListReadersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Reader(_message.Message):
    __slots__ = ("name", "card_present", "atr")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CARD_PRESENT_FIELD_NUMBER: _ClassVar[int]
    ATR_FIELD_NUMBER: _ClassVar[int]
    name: str
    card_present: bool
    atr: bytes
    def __init__(self, name: _Optional[str] = ..., card_present: _Optional[bool] = ..., atr: _Optional[bytes] = ...) -> None: ...

class ListReadersResponse(_message.Message):
    __slots__ = ("readers", "service_available")
    READERS_FIELD_NUMBER: _ClassVar[int]
    SERVICE_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    readers: _containers.RepeatedCompositeFieldContainer[Reader]
    service_available: bool
    def __init__(self, readers: _Optional[_Iterable[_Union[Reader, _Mapping]]] = ..., service_available: _Optional[bool] = ...) -> None: ...

class WatchReadersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReaderEvent(_message.Message):
    __slots__ = ("kind", "reader", "atr")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[ReaderEvent.Kind]
        READER_ADDED: _ClassVar[ReaderEvent.Kind]
        READER_REMOVED: _ClassVar[ReaderEvent.Kind]
        CARD_INSERTED: _ClassVar[ReaderEvent.Kind]
        CARD_REMOVED: _ClassVar[ReaderEvent.Kind]
        SERVICE_UP: _ClassVar[ReaderEvent.Kind]
        SERVICE_DOWN: _ClassVar[ReaderEvent.Kind]
    KIND_UNSPECIFIED: ReaderEvent.Kind
    READER_ADDED: ReaderEvent.Kind
    READER_REMOVED: ReaderEvent.Kind
    CARD_INSERTED: ReaderEvent.Kind
    CARD_REMOVED: ReaderEvent.Kind
    SERVICE_UP: ReaderEvent.Kind
    SERVICE_DOWN: ReaderEvent.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    READER_FIELD_NUMBER: _ClassVar[int]
    ATR_FIELD_NUMBER: _ClassVar[int]
    kind: ReaderEvent.Kind
    reader: str
    atr: bytes
    def __init__(self, kind: _Optional[_Union[ReaderEvent.Kind, str]] = ..., reader: _Optional[str] = ..., atr: _Optional[bytes] = ...) -> None: ...

class CardRequest(_message.Message):
    __slots__ = ("reader",)
    READER_FIELD_NUMBER: _ClassVar[int]
    reader: str
    def __init__(self, reader: _Optional[str] = ...) -> None: ...

class CardInfo(_message.Message):
    __slots__ = ("reader", "atr", "applets")
    READER_FIELD_NUMBER: _ClassVar[int]
    ATR_FIELD_NUMBER: _ClassVar[int]
    APPLETS_FIELD_NUMBER: _ClassVar[int]
    reader: str
    atr: bytes
    applets: _containers.RepeatedCompositeFieldContainer[Applet]
    def __init__(self, reader: _Optional[str] = ..., atr: _Optional[bytes] = ..., applets: _Optional[_Iterable[_Union[Applet, _Mapping]]] = ...) -> None: ...

class Applet(_message.Message):
    __slots__ = ("name", "aid")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AID_FIELD_NUMBER: _ClassVar[int]
    name: str
    aid: bytes
    def __init__(self, name: _Optional[str] = ..., aid: _Optional[bytes] = ...) -> None: ...

class PivCertificate(_message.Message):
    __slots__ = ("slot", "der", "subject", "issuer", "not_after")
    SLOT_FIELD_NUMBER: _ClassVar[int]
    DER_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    slot: PivSlot
    der: bytes
    subject: str
    issuer: str
    not_after: str
    def __init__(self, slot: _Optional[_Union[PivSlot, str]] = ..., der: _Optional[bytes] = ..., subject: _Optional[str] = ..., issuer: _Optional[str] = ..., not_after: _Optional[str] = ...) -> None: ...

class PivStatus(_message.Message):
    __slots__ = ("reader", "guid", "fascn", "expiry", "pin_attempts_remaining", "pin_blocked", "certificates")
    READER_FIELD_NUMBER: _ClassVar[int]
    GUID_FIELD_NUMBER: _ClassVar[int]
    FASCN_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_FIELD_NUMBER: _ClassVar[int]
    PIN_ATTEMPTS_REMAINING_FIELD_NUMBER: _ClassVar[int]
    PIN_BLOCKED_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    reader: str
    guid: bytes
    fascn: bytes
    expiry: str
    pin_attempts_remaining: int
    pin_blocked: bool
    certificates: _containers.RepeatedCompositeFieldContainer[PivCertificate]
    def __init__(self, reader: _Optional[str] = ..., guid: _Optional[bytes] = ..., fascn: _Optional[bytes] = ..., expiry: _Optional[str] = ..., pin_attempts_remaining: _Optional[int] = ..., pin_blocked: _Optional[bool] = ..., certificates: _Optional[_Iterable[_Union[PivCertificate, _Mapping]]] = ...) -> None: ...

class PinResult(_message.Message):
    __slots__ = ("outcome", "attempts_remaining")
    class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OUTCOME_UNSPECIFIED: _ClassVar[PinResult.Outcome]
        OK: _ClassVar[PinResult.Outcome]
        WRONG: _ClassVar[PinResult.Outcome]
        BLOCKED: _ClassVar[PinResult.Outcome]
    OUTCOME_UNSPECIFIED: PinResult.Outcome
    OK: PinResult.Outcome
    WRONG: PinResult.Outcome
    BLOCKED: PinResult.Outcome
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_REMAINING_FIELD_NUMBER: _ClassVar[int]
    outcome: PinResult.Outcome
    attempts_remaining: int
    def __init__(self, outcome: _Optional[_Union[PinResult.Outcome, str]] = ..., attempts_remaining: _Optional[int] = ...) -> None: ...

class VerifyPinRequest(_message.Message):
    __slots__ = ("reader", "pin")
    READER_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    reader: str
    pin: str
    def __init__(self, reader: _Optional[str] = ..., pin: _Optional[str] = ...) -> None: ...

class ChangePinRequest(_message.Message):
    __slots__ = ("reader", "old_pin", "new_pin")
    READER_FIELD_NUMBER: _ClassVar[int]
    OLD_PIN_FIELD_NUMBER: _ClassVar[int]
    NEW_PIN_FIELD_NUMBER: _ClassVar[int]
    reader: str
    old_pin: str
    new_pin: str
    def __init__(self, reader: _Optional[str] = ..., old_pin: _Optional[str] = ..., new_pin: _Optional[str] = ...) -> None: ...

class UnblockPinRequest(_message.Message):
    __slots__ = ("reader", "puk", "new_pin")
    READER_FIELD_NUMBER: _ClassVar[int]
    PUK_FIELD_NUMBER: _ClassVar[int]
    NEW_PIN_FIELD_NUMBER: _ClassVar[int]
    reader: str
    puk: str
    new_pin: str
    def __init__(self, reader: _Optional[str] = ..., puk: _Optional[str] = ..., new_pin: _Optional[str] = ...) -> None: ...

class GenerateKeyRequest(_message.Message):
    __slots__ = ("reader", "slot", "algorithm", "management_key")
    READER_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    MANAGEMENT_KEY_FIELD_NUMBER: _ClassVar[int]
    reader: str
    slot: PivSlot
    algorithm: KeyAlgorithm
    management_key: bytes
    def __init__(self, reader: _Optional[str] = ..., slot: _Optional[_Union[PivSlot, str]] = ..., algorithm: _Optional[_Union[KeyAlgorithm, str]] = ..., management_key: _Optional[bytes] = ...) -> None: ...

class GenerateKeyResponse(_message.Message):
    __slots__ = ("public_key_der",)
    PUBLIC_KEY_DER_FIELD_NUMBER: _ClassVar[int]
    public_key_der: bytes
    def __init__(self, public_key_der: _Optional[bytes] = ...) -> None: ...

class ImportCertificateRequest(_message.Message):
    __slots__ = ("reader", "slot", "certificate_der", "management_key")
    READER_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_DER_FIELD_NUMBER: _ClassVar[int]
    MANAGEMENT_KEY_FIELD_NUMBER: _ClassVar[int]
    reader: str
    slot: PivSlot
    certificate_der: bytes
    management_key: bytes
    def __init__(self, reader: _Optional[str] = ..., slot: _Optional[_Union[PivSlot, str]] = ..., certificate_der: _Optional[bytes] = ..., management_key: _Optional[bytes] = ...) -> None: ...

class ImportCertificateResponse(_message.Message):
    __slots__ = ("certificate",)
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    certificate: PivCertificate
    def __init__(self, certificate: _Optional[_Union[PivCertificate, _Mapping]] = ...) -> None: ...

class SignRequest(_message.Message):
    __slots__ = ("reader", "slot", "algorithm", "pin", "message", "digest", "hash")
    READER_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    reader: str
    slot: PivSlot
    algorithm: KeyAlgorithm
    pin: str
    message: bytes
    digest: bytes
    hash: str
    def __init__(self, reader: _Optional[str] = ..., slot: _Optional[_Union[PivSlot, str]] = ..., algorithm: _Optional[_Union[KeyAlgorithm, str]] = ..., pin: _Optional[str] = ..., message: _Optional[bytes] = ..., digest: _Optional[bytes] = ..., hash: _Optional[str] = ...) -> None: ...

class SignResponse(_message.Message):
    __slots__ = ("pin", "signature")
    PIN_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    pin: PinResult
    signature: bytes
    def __init__(self, pin: _Optional[_Union[PinResult, _Mapping]] = ..., signature: _Optional[bytes] = ...) -> None: ...

class TransmitRequest(_message.Message):
    __slots__ = ("reader", "apdus")
    READER_FIELD_NUMBER: _ClassVar[int]
    APDUS_FIELD_NUMBER: _ClassVar[int]
    reader: str
    apdus: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, reader: _Optional[str] = ..., apdus: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ApduResponse(_message.Message):
    __slots__ = ("data", "sw")
    DATA_FIELD_NUMBER: _ClassVar[int]
    SW_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    sw: int
    def __init__(self, data: _Optional[bytes] = ..., sw: _Optional[int] = ...) -> None: ...

class TransmitResponse(_message.Message):
    __slots__ = ("responses",)
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[ApduResponse]
    def __init__(self, responses: _Optional[_Iterable[_Union[ApduResponse, _Mapping]]] = ...) -> None: ...

class RegisterCardRequest(_message.Message):
    __slots__ = ("reader", "pin", "customer_id", "operator_id", "terminal", "key_slot")
    READER_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_FIELD_NUMBER: _ClassVar[int]
    KEY_SLOT_FIELD_NUMBER: _ClassVar[int]
    reader: str
    pin: str
    customer_id: str
    operator_id: str
    terminal: str
    key_slot: PivSlot
    def __init__(self, reader: _Optional[str] = ..., pin: _Optional[str] = ..., customer_id: _Optional[str] = ..., operator_id: _Optional[str] = ..., terminal: _Optional[str] = ..., key_slot: _Optional[_Union[PivSlot, str]] = ...) -> None: ...

class RegisterCardResponse(_message.Message):
    __slots__ = ("pin", "registration")
    PIN_FIELD_NUMBER: _ClassVar[int]
    REGISTRATION_FIELD_NUMBER: _ClassVar[int]
    pin: PinResult
    registration: _customer_pb2.BranchRegistration
    def __init__(self, pin: _Optional[_Union[PinResult, _Mapping]] = ..., registration: _Optional[_Union[_customer_pb2.BranchRegistration, _Mapping]] = ...) -> None: ...

class DeregisterCardRequest(_message.Message):
    __slots__ = ("card_serial", "customer_id", "operator_id", "reason")
    CARD_SERIAL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    card_serial: str
    customer_id: str
    operator_id: str
    reason: str
    def __init__(self, card_serial: _Optional[str] = ..., customer_id: _Optional[str] = ..., operator_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
