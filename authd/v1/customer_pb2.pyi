from authd.v1 import otp_pb2 as _otp_pb2
from authd.v1 import policy_pb2 as _policy_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MediumKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEDIUM_KIND_UNSPECIFIED: _ClassVar[MediumKind]
    MEDIUM_KIND_OTP: _ClassVar[MediumKind]
    MEDIUM_KIND_SECURITY_CARD: _ClassVar[MediumKind]
    MEDIUM_KIND_BRAILLE_SECURITY_CARD: _ClassVar[MediumKind]
    MEDIUM_KIND_HSM_TOKEN: _ClassVar[MediumKind]
    MEDIUM_KIND_SMARTCARD: _ClassVar[MediumKind]

class MediumState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEDIUM_STATE_UNSPECIFIED: _ClassVar[MediumState]
    MEDIUM_STATE_ACTIVE: _ClassVar[MediumState]
    MEDIUM_STATE_LOCKED: _ClassVar[MediumState]
    MEDIUM_STATE_REPORTED_LOST: _ClassVar[MediumState]
    MEDIUM_STATE_RESTRICTED: _ClassVar[MediumState]
    MEDIUM_STATE_REVOKED: _ClassVar[MediumState]
    MEDIUM_STATE_REPLACED: _ClassVar[MediumState]
    MEDIUM_STATE_EXPIRED: _ClassVar[MediumState]
    MEDIUM_STATE_DEREGISTERED: _ClassVar[MediumState]

class ExemptionOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXEMPTION_OUTCOME_UNSPECIFIED: _ClassVar[ExemptionOutcome]
    EXEMPTION_OUTCOME_EXEMPT: _ClassVar[ExemptionOutcome]
    EXEMPTION_OUTCOME_NOT_REGISTERED: _ClassVar[ExemptionOutcome]
    EXEMPTION_OUTCOME_OTHER_CUSTOMER: _ClassVar[ExemptionOutcome]
    EXEMPTION_OUTCOME_MEDIUM_NOT_EXEMPT: _ClassVar[ExemptionOutcome]
MEDIUM_KIND_UNSPECIFIED: MediumKind
MEDIUM_KIND_OTP: MediumKind
MEDIUM_KIND_SECURITY_CARD: MediumKind
MEDIUM_KIND_BRAILLE_SECURITY_CARD: MediumKind
MEDIUM_KIND_HSM_TOKEN: MediumKind
MEDIUM_KIND_SMARTCARD: MediumKind
MEDIUM_STATE_UNSPECIFIED: MediumState
MEDIUM_STATE_ACTIVE: MediumState
MEDIUM_STATE_LOCKED: MediumState
MEDIUM_STATE_REPORTED_LOST: MediumState
MEDIUM_STATE_RESTRICTED: MediumState
MEDIUM_STATE_REVOKED: MediumState
MEDIUM_STATE_REPLACED: MediumState
MEDIUM_STATE_EXPIRED: MediumState
MEDIUM_STATE_DEREGISTERED: MediumState
EXEMPTION_OUTCOME_UNSPECIFIED: ExemptionOutcome
EXEMPTION_OUTCOME_EXEMPT: ExemptionOutcome
EXEMPTION_OUTCOME_NOT_REGISTERED: ExemptionOutcome
EXEMPTION_OUTCOME_OTHER_CUSTOMER: ExemptionOutcome
EXEMPTION_OUTCOME_MEDIUM_NOT_EXEMPT: ExemptionOutcome

class ListCustomerMediaRequest(_message.Message):
    __slots__ = ("customer_id", "include_ended")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_ENDED_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    include_ended: bool
    def __init__(self, customer_id: _Optional[str] = ..., include_ended: _Optional[bool] = ...) -> None: ...

class CustomerMedium(_message.Message):
    __slots__ = ("kind", "serial", "state", "channel", "registered_at", "updated_at", "branch_registered", "issued_here", "consecutive_failures", "attempts_left", "replaced_by", "terminal", "registration_id")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    BRANCH_REGISTERED_FIELD_NUMBER: _ClassVar[int]
    ISSUED_HERE_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_LEFT_FIELD_NUMBER: _ClassVar[int]
    REPLACED_BY_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_FIELD_NUMBER: _ClassVar[int]
    REGISTRATION_ID_FIELD_NUMBER: _ClassVar[int]
    kind: MediumKind
    serial: str
    state: MediumState
    channel: _otp_pb2.RegistrationChannel
    registered_at: float
    updated_at: float
    branch_registered: bool
    issued_here: bool
    consecutive_failures: int
    attempts_left: int
    replaced_by: str
    terminal: str
    registration_id: str
    def __init__(self, kind: _Optional[_Union[MediumKind, str]] = ..., serial: _Optional[str] = ..., state: _Optional[_Union[MediumState, str]] = ..., channel: _Optional[_Union[_otp_pb2.RegistrationChannel, str]] = ..., registered_at: _Optional[float] = ..., updated_at: _Optional[float] = ..., branch_registered: _Optional[bool] = ..., issued_here: _Optional[bool] = ..., consecutive_failures: _Optional[int] = ..., attempts_left: _Optional[int] = ..., replaced_by: _Optional[str] = ..., terminal: _Optional[str] = ..., registration_id: _Optional[str] = ...) -> None: ...

class ListCustomerMediaResponse(_message.Message):
    __slots__ = ("customer_id", "media")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    media: _containers.RepeatedCompositeFieldContainer[CustomerMedium]
    def __init__(self, customer_id: _Optional[str] = ..., media: _Optional[_Iterable[_Union[CustomerMedium, _Mapping]]] = ...) -> None: ...

class ChangeCustomerKindRequest(_message.Message):
    __slots__ = ("customer_id", "kind", "operator_id", "master_administrator", "reason")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    MASTER_ADMINISTRATOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    kind: _policy_pb2.CustomerKind
    operator_id: str
    master_administrator: bool
    reason: str
    def __init__(self, customer_id: _Optional[str] = ..., kind: _Optional[_Union[_policy_pb2.CustomerKind, str]] = ..., operator_id: _Optional[str] = ..., master_administrator: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class CustomerKindChange(_message.Message):
    __slots__ = ("customer_id", "kind", "previous_kind", "changed", "foreign_otps_by_master", "limits_lowered", "customer")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_KIND_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    FOREIGN_OTPS_BY_MASTER_FIELD_NUMBER: _ClassVar[int]
    LIMITS_LOWERED_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    kind: _policy_pb2.CustomerKind
    previous_kind: _policy_pb2.CustomerKind
    changed: bool
    foreign_otps_by_master: _containers.RepeatedScalarFieldContainer[str]
    limits_lowered: bool
    customer: _policy_pb2.PolicyCustomer
    def __init__(self, customer_id: _Optional[str] = ..., kind: _Optional[_Union[_policy_pb2.CustomerKind, str]] = ..., previous_kind: _Optional[_Union[_policy_pb2.CustomerKind, str]] = ..., changed: _Optional[bool] = ..., foreign_otps_by_master: _Optional[_Iterable[str]] = ..., limits_lowered: _Optional[bool] = ..., customer: _Optional[_Union[_policy_pb2.PolicyCustomer, _Mapping]] = ...) -> None: ...

class BranchRegistration(_message.Message):
    __slots__ = ("id", "kind", "serial", "customer_id", "institution", "terminal", "operator_id", "registered_at", "deregistered_at", "active", "public_key")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    DEREGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: MediumKind
    serial: str
    customer_id: str
    institution: str
    terminal: str
    operator_id: str
    registered_at: float
    deregistered_at: float
    active: bool
    public_key: bytes
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[_Union[MediumKind, str]] = ..., serial: _Optional[str] = ..., customer_id: _Optional[str] = ..., institution: _Optional[str] = ..., terminal: _Optional[str] = ..., operator_id: _Optional[str] = ..., registered_at: _Optional[float] = ..., deregistered_at: _Optional[float] = ..., active: _Optional[bool] = ..., public_key: _Optional[bytes] = ...) -> None: ...

class RegisterMediumRequest(_message.Message):
    __slots__ = ("kind", "serial", "customer_id", "operator_id", "terminal", "public_key")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    kind: MediumKind
    serial: str
    customer_id: str
    operator_id: str
    terminal: str
    public_key: bytes
    def __init__(self, kind: _Optional[_Union[MediumKind, str]] = ..., serial: _Optional[str] = ..., customer_id: _Optional[str] = ..., operator_id: _Optional[str] = ..., terminal: _Optional[str] = ..., public_key: _Optional[bytes] = ...) -> None: ...

class DeregisterMediumRequest(_message.Message):
    __slots__ = ("kind", "serial", "customer_id", "operator_id", "reason")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    kind: MediumKind
    serial: str
    customer_id: str
    operator_id: str
    reason: str
    def __init__(self, kind: _Optional[_Union[MediumKind, str]] = ..., serial: _Optional[str] = ..., customer_id: _Optional[str] = ..., operator_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ListRegistrationsRequest(_message.Message):
    __slots__ = ("kind", "serial", "customer_id", "include_ended")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_ENDED_FIELD_NUMBER: _ClassVar[int]
    kind: MediumKind
    serial: str
    customer_id: str
    include_ended: bool
    def __init__(self, kind: _Optional[_Union[MediumKind, str]] = ..., serial: _Optional[str] = ..., customer_id: _Optional[str] = ..., include_ended: _Optional[bool] = ...) -> None: ...

class ListRegistrationsResponse(_message.Message):
    __slots__ = ("registrations",)
    REGISTRATIONS_FIELD_NUMBER: _ClassVar[int]
    registrations: _containers.RepeatedCompositeFieldContainer[BranchRegistration]
    def __init__(self, registrations: _Optional[_Iterable[_Union[BranchRegistration, _Mapping]]] = ...) -> None: ...

class CheckExemptionRequest(_message.Message):
    __slots__ = ("kind", "serial", "customer_id")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    kind: MediumKind
    serial: str
    customer_id: str
    def __init__(self, kind: _Optional[_Union[MediumKind, str]] = ..., serial: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class CheckExemptionResponse(_message.Message):
    __slots__ = ("exempt", "outcome", "reason", "registration")
    EXEMPT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REGISTRATION_FIELD_NUMBER: _ClassVar[int]
    exempt: bool
    outcome: ExemptionOutcome
    reason: str
    registration: BranchRegistration
    def __init__(self, exempt: _Optional[bool] = ..., outcome: _Optional[_Union[ExemptionOutcome, str]] = ..., reason: _Optional[str] = ..., registration: _Optional[_Union[BranchRegistration, _Mapping]] = ...) -> None: ...
