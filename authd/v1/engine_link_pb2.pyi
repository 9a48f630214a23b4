from authd.v1 import otp_pb2 as _otp_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LinkCall(_message.Message):
    __slots__ = ("id", "method", "institution", "role", "subject", "requests", "idempotency_key")
    ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    id: int
    method: str
    institution: str
    role: str
    subject: str
    requests: _containers.RepeatedCompositeFieldContainer[_otp_pb2.VerifyRequest]
    idempotency_key: str
    def __init__(self, id: _Optional[int] = ..., method: _Optional[str] = ..., institution: _Optional[str] = ..., role: _Optional[str] = ..., subject: _Optional[str] = ..., requests: _Optional[_Iterable[_Union[_otp_pb2.VerifyRequest, _Mapping]]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class LinkShed(_message.Message):
    __slots__ = ("method", "code", "count")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    method: str
    code: str
    count: int
    def __init__(self, method: _Optional[str] = ..., code: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class LinkFrame(_message.Message):
    __slots__ = ("calls", "shed", "queued_us", "sent_ns")
    CALLS_FIELD_NUMBER: _ClassVar[int]
    SHED_FIELD_NUMBER: _ClassVar[int]
    QUEUED_US_FIELD_NUMBER: _ClassVar[int]
    SENT_NS_FIELD_NUMBER: _ClassVar[int]
    calls: _containers.RepeatedCompositeFieldContainer[LinkCall]
    shed: _containers.RepeatedCompositeFieldContainer[LinkShed]
    queued_us: int
    sent_ns: int
    def __init__(self, calls: _Optional[_Iterable[_Union[LinkCall, _Mapping]]] = ..., shed: _Optional[_Iterable[_Union[LinkShed, _Mapping]]] = ..., queued_us: _Optional[int] = ..., sent_ns: _Optional[int] = ...) -> None: ...

class LinkAnswer(_message.Message):
    __slots__ = ("id", "error", "responses")
    ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    id: int
    error: _status_pb2.Status
    responses: _containers.RepeatedCompositeFieldContainer[_otp_pb2.VerifyResponse]
    def __init__(self, id: _Optional[int] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., responses: _Optional[_Iterable[_Union[_otp_pb2.VerifyResponse, _Mapping]]] = ...) -> None: ...

class LinkAnswers(_message.Message):
    __slots__ = ("calls",)
    CALLS_FIELD_NUMBER: _ClassVar[int]
    calls: _containers.RepeatedCompositeFieldContainer[LinkAnswer]
    def __init__(self, calls: _Optional[_Iterable[_Union[LinkAnswer, _Mapping]]] = ...) -> None: ...
