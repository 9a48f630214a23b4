from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LinkedCall(_message.Message):
    __slots__ = ("id", "method", "institution", "role", "subject", "operator_metadata", "has_operator", "request", "part", "served", "reset", "bucket_calls", "bucket_seconds")
    class Part(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UNARY: _ClassVar[LinkedCall.Part]
        STREAM_OPEN: _ClassVar[LinkedCall.Part]
        STREAM_ITEM: _ClassVar[LinkedCall.Part]
        STREAM_HALF_CLOSE: _ClassVar[LinkedCall.Part]
        STREAM_CANCEL: _ClassVar[LinkedCall.Part]
        LEASE_RETURN: _ClassVar[LinkedCall.Part]
        LEASE_USED: _ClassVar[LinkedCall.Part]
    UNARY: LinkedCall.Part
    STREAM_OPEN: LinkedCall.Part
    STREAM_ITEM: LinkedCall.Part
    STREAM_HALF_CLOSE: LinkedCall.Part
    STREAM_CANCEL: LinkedCall.Part
    LEASE_RETURN: LinkedCall.Part
    LEASE_USED: LinkedCall.Part
    ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_METADATA_FIELD_NUMBER: _ClassVar[int]
    HAS_OPERATOR_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    PART_FIELD_NUMBER: _ClassVar[int]
    SERVED_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    BUCKET_CALLS_FIELD_NUMBER: _ClassVar[int]
    BUCKET_SECONDS_FIELD_NUMBER: _ClassVar[int]
    id: int
    method: str
    institution: str
    role: str
    subject: str
    operator_metadata: bytes
    has_operator: bool
    request: bytes
    part: LinkedCall.Part
    served: int
    reset: bool
    bucket_calls: _containers.RepeatedScalarFieldContainer[int]
    bucket_seconds: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, id: _Optional[int] = ..., method: _Optional[str] = ..., institution: _Optional[str] = ..., role: _Optional[str] = ..., subject: _Optional[str] = ..., operator_metadata: _Optional[bytes] = ..., has_operator: _Optional[bool] = ..., request: _Optional[bytes] = ..., part: _Optional[_Union[LinkedCall.Part, str]] = ..., served: _Optional[int] = ..., reset: _Optional[bool] = ..., bucket_calls: _Optional[_Iterable[int]] = ..., bucket_seconds: _Optional[_Iterable[float]] = ...) -> None: ...

class LinkedCalls(_message.Message):
    __slots__ = ("calls",)
    CALLS_FIELD_NUMBER: _ClassVar[int]
    calls: _containers.RepeatedCompositeFieldContainer[LinkedCall]
    def __init__(self, calls: _Optional[_Iterable[_Union[LinkedCall, _Mapping]]] = ...) -> None: ...

class LinkedAnswer(_message.Message):
    __slots__ = ("id", "response", "error", "item", "lease", "recall", "token_lease", "token_recall")
    ID_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ITEM_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    TOKEN_LEASE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_RECALL_FIELD_NUMBER: _ClassVar[int]
    id: int
    response: bytes
    error: _status_pb2.Status
    item: bool
    lease: CardLease
    recall: int
    token_lease: TokenLease
    token_recall: int
    def __init__(self, id: _Optional[int] = ..., response: _Optional[bytes] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., item: _Optional[bool] = ..., lease: _Optional[_Union[CardLease, _Mapping]] = ..., recall: _Optional[int] = ..., token_lease: _Optional[_Union[TokenLease, _Mapping]] = ..., token_recall: _Optional[int] = ...) -> None: ...

class CardLease(_message.Message):
    __slots__ = ("id", "reader", "institution", "role", "subject", "operator_metadata", "has_operator", "idle_ms", "max_apdu_bytes", "security_ins", "max_request_bytes", "seconds_bounds", "method", "stream_method", "max_stream_request_bytes")
    ID_FIELD_NUMBER: _ClassVar[int]
    READER_FIELD_NUMBER: _ClassVar[int]
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_METADATA_FIELD_NUMBER: _ClassVar[int]
    HAS_OPERATOR_FIELD_NUMBER: _ClassVar[int]
    IDLE_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_APDU_BYTES_FIELD_NUMBER: _ClassVar[int]
    SECURITY_INS_FIELD_NUMBER: _ClassVar[int]
    MAX_REQUEST_BYTES_FIELD_NUMBER: _ClassVar[int]
    SECONDS_BOUNDS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    STREAM_METHOD_FIELD_NUMBER: _ClassVar[int]
    MAX_STREAM_REQUEST_BYTES_FIELD_NUMBER: _ClassVar[int]
    id: int
    reader: str
    institution: str
    role: str
    subject: str
    operator_metadata: bytes
    has_operator: bool
    idle_ms: int
    max_apdu_bytes: int
    security_ins: bytes
    max_request_bytes: int
    seconds_bounds: _containers.RepeatedScalarFieldContainer[float]
    method: str
    stream_method: str
    max_stream_request_bytes: int
    def __init__(self, id: _Optional[int] = ..., reader: _Optional[str] = ..., institution: _Optional[str] = ..., role: _Optional[str] = ..., subject: _Optional[str] = ..., operator_metadata: _Optional[bytes] = ..., has_operator: _Optional[bool] = ..., idle_ms: _Optional[int] = ..., max_apdu_bytes: _Optional[int] = ..., security_ins: _Optional[bytes] = ..., max_request_bytes: _Optional[int] = ..., seconds_bounds: _Optional[_Iterable[float]] = ..., method: _Optional[str] = ..., stream_method: _Optional[str] = ..., max_stream_request_bytes: _Optional[int] = ...) -> None: ...

class TokenLease(_message.Message):
    __slots__ = ("id", "handle", "institution", "role", "subject", "operator_metadata", "has_operator", "module", "serial", "label", "pin", "max_sign_bytes", "max_request_bytes", "seconds_bounds", "report_ms", "idle_ms", "idle_left_ms", "max_left_ms", "stream_method", "max_stream_request_bytes")
    ID_FIELD_NUMBER: _ClassVar[int]
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_METADATA_FIELD_NUMBER: _ClassVar[int]
    HAS_OPERATOR_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    MAX_SIGN_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_REQUEST_BYTES_FIELD_NUMBER: _ClassVar[int]
    SECONDS_BOUNDS_FIELD_NUMBER: _ClassVar[int]
    REPORT_MS_FIELD_NUMBER: _ClassVar[int]
    IDLE_MS_FIELD_NUMBER: _ClassVar[int]
    IDLE_LEFT_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_LEFT_MS_FIELD_NUMBER: _ClassVar[int]
    STREAM_METHOD_FIELD_NUMBER: _ClassVar[int]
    MAX_STREAM_REQUEST_BYTES_FIELD_NUMBER: _ClassVar[int]
    id: int
    handle: str
    institution: str
    role: str
    subject: str
    operator_metadata: bytes
    has_operator: bool
    module: str
    serial: str
    label: str
    pin: bytes
    max_sign_bytes: int
    max_request_bytes: int
    seconds_bounds: _containers.RepeatedScalarFieldContainer[float]
    report_ms: int
    idle_ms: int
    idle_left_ms: int
    max_left_ms: int
    stream_method: str
    max_stream_request_bytes: int
    def __init__(self, id: _Optional[int] = ..., handle: _Optional[str] = ..., institution: _Optional[str] = ..., role: _Optional[str] = ..., subject: _Optional[str] = ..., operator_metadata: _Optional[bytes] = ..., has_operator: _Optional[bool] = ..., module: _Optional[str] = ..., serial: _Optional[str] = ..., label: _Optional[str] = ..., pin: _Optional[bytes] = ..., max_sign_bytes: _Optional[int] = ..., max_request_bytes: _Optional[int] = ..., seconds_bounds: _Optional[_Iterable[float]] = ..., report_ms: _Optional[int] = ..., idle_ms: _Optional[int] = ..., idle_left_ms: _Optional[int] = ..., max_left_ms: _Optional[int] = ..., stream_method: _Optional[str] = ..., max_stream_request_bytes: _Optional[int] = ...) -> None: ...

class LinkedAnswers(_message.Message):
    __slots__ = ("answers",)
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    answers: _containers.RepeatedCompositeFieldContainer[LinkedAnswer]
    def __init__(self, answers: _Optional[_Iterable[_Union[LinkedAnswer, _Mapping]]] = ...) -> None: ...
