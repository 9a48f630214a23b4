from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SecurityCardState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SECURITY_CARD_STATE_UNSPECIFIED: _ClassVar[SecurityCardState]
    SECURITY_CARD_STATE_ACTIVE: _ClassVar[SecurityCardState]
    SECURITY_CARD_STATE_RESTRICTED: _ClassVar[SecurityCardState]
    SECURITY_CARD_STATE_REVOKED: _ClassVar[SecurityCardState]
    SECURITY_CARD_STATE_REPLACED: _ClassVar[SecurityCardState]

class SecurityCardMedium(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SECURITY_CARD_MEDIUM_UNSPECIFIED: _ClassVar[SecurityCardMedium]
    SECURITY_CARD_MEDIUM_PRINTED: _ClassVar[SecurityCardMedium]
    SECURITY_CARD_MEDIUM_BRAILLE: _ClassVar[SecurityCardMedium]

class SecurityCardLayout(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SECURITY_CARD_LAYOUT_UNSPECIFIED: _ClassVar[SecurityCardLayout]
    SECURITY_CARD_LAYOUT_CARD: _ClassVar[SecurityCardLayout]
    SECURITY_CARD_LAYOUT_PAGE: _ClassVar[SecurityCardLayout]

class SecurityCardPrintState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SECURITY_CARD_PRINT_STATE_UNSPECIFIED: _ClassVar[SecurityCardPrintState]
    SECURITY_CARD_PRINT_COMPLETED: _ClassVar[SecurityCardPrintState]
    SECURITY_CARD_PRINT_SENT: _ClassVar[SecurityCardPrintState]
    SECURITY_CARD_PRINT_QUEUED: _ClassVar[SecurityCardPrintState]
    SECURITY_CARD_PRINT_FAILED: _ClassVar[SecurityCardPrintState]

class SecurityCardPrintFailure(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SECURITY_CARD_PRINT_FAILURE_NONE: _ClassVar[SecurityCardPrintFailure]
    SECURITY_CARD_PRINT_FAILURE_OFFLINE: _ClassVar[SecurityCardPrintFailure]
    SECURITY_CARD_PRINT_FAILURE_PAPER_JAM: _ClassVar[SecurityCardPrintFailure]
    SECURITY_CARD_PRINT_FAILURE_PAPER_OUT: _ClassVar[SecurityCardPrintFailure]
    SECURITY_CARD_PRINT_FAILURE_DEVICE_FAULT: _ClassVar[SecurityCardPrintFailure]
    SECURITY_CARD_PRINT_FAILURE_TIMEOUT: _ClassVar[SecurityCardPrintFailure]

class SecurityCardOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SECURITY_CARD_OUTCOME_UNSPECIFIED: _ClassVar[SecurityCardOutcome]
    SECURITY_CARD_OUTCOME_ACCEPTED: _ClassVar[SecurityCardOutcome]
    SECURITY_CARD_OUTCOME_WRONG_ANSWER: _ClassVar[SecurityCardOutcome]
    SECURITY_CARD_OUTCOME_CARD_RESTRICTED: _ClassVar[SecurityCardOutcome]
    SECURITY_CARD_OUTCOME_CARD_REVOKED: _ClassVar[SecurityCardOutcome]
    SECURITY_CARD_OUTCOME_CARD_REPLACED: _ClassVar[SecurityCardOutcome]
    SECURITY_CARD_OUTCOME_CHALLENGE_EXPIRED: _ClassVar[SecurityCardOutcome]
    SECURITY_CARD_OUTCOME_CHALLENGE_USED: _ClassVar[SecurityCardOutcome]
SECURITY_CARD_STATE_UNSPECIFIED: SecurityCardState
SECURITY_CARD_STATE_ACTIVE: SecurityCardState
SECURITY_CARD_STATE_RESTRICTED: SecurityCardState
SECURITY_CARD_STATE_REVOKED: SecurityCardState
SECURITY_CARD_STATE_REPLACED: SecurityCardState
SECURITY_CARD_MEDIUM_UNSPECIFIED: SecurityCardMedium
SECURITY_CARD_MEDIUM_PRINTED: SecurityCardMedium
SECURITY_CARD_MEDIUM_BRAILLE: SecurityCardMedium
SECURITY_CARD_LAYOUT_UNSPECIFIED: SecurityCardLayout
SECURITY_CARD_LAYOUT_CARD: SecurityCardLayout
SECURITY_CARD_LAYOUT_PAGE: SecurityCardLayout
SECURITY_CARD_PRINT_STATE_UNSPECIFIED: SecurityCardPrintState
SECURITY_CARD_PRINT_COMPLETED: SecurityCardPrintState
SECURITY_CARD_PRINT_SENT: SecurityCardPrintState
SECURITY_CARD_PRINT_QUEUED: SecurityCardPrintState
SECURITY_CARD_PRINT_FAILED: SecurityCardPrintState
SECURITY_CARD_PRINT_FAILURE_NONE: SecurityCardPrintFailure
SECURITY_CARD_PRINT_FAILURE_OFFLINE: SecurityCardPrintFailure
SECURITY_CARD_PRINT_FAILURE_PAPER_JAM: SecurityCardPrintFailure
SECURITY_CARD_PRINT_FAILURE_PAPER_OUT: SecurityCardPrintFailure
SECURITY_CARD_PRINT_FAILURE_DEVICE_FAULT: SecurityCardPrintFailure
SECURITY_CARD_PRINT_FAILURE_TIMEOUT: SecurityCardPrintFailure
SECURITY_CARD_OUTCOME_UNSPECIFIED: SecurityCardOutcome
SECURITY_CARD_OUTCOME_ACCEPTED: SecurityCardOutcome
SECURITY_CARD_OUTCOME_WRONG_ANSWER: SecurityCardOutcome
SECURITY_CARD_OUTCOME_CARD_RESTRICTED: SecurityCardOutcome
SECURITY_CARD_OUTCOME_CARD_REVOKED: SecurityCardOutcome
SECURITY_CARD_OUTCOME_CARD_REPLACED: SecurityCardOutcome
SECURITY_CARD_OUTCOME_CHALLENGE_EXPIRED: SecurityCardOutcome
SECURITY_CARD_OUTCOME_CHALLENGE_USED: SecurityCardOutcome

class SecurityCardStatus(_message.Message):
    __slots__ = ("serial", "customer_id", "medium", "state", "failures", "max_failures", "attempts_left", "code_count", "code_digits", "issued_at", "updated_at", "replaces", "replaced_by", "print_count", "last_print_state", "braille_card_user", "layout")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    MEDIUM_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    MAX_FAILURES_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_LEFT_FIELD_NUMBER: _ClassVar[int]
    CODE_COUNT_FIELD_NUMBER: _ClassVar[int]
    CODE_DIGITS_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    REPLACES_FIELD_NUMBER: _ClassVar[int]
    REPLACED_BY_FIELD_NUMBER: _ClassVar[int]
    PRINT_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_PRINT_STATE_FIELD_NUMBER: _ClassVar[int]
    BRAILLE_CARD_USER_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    serial: str
    customer_id: str
    medium: SecurityCardMedium
    state: SecurityCardState
    failures: int
    max_failures: int
    attempts_left: int
    code_count: int
    code_digits: int
    issued_at: float
    updated_at: float
    replaces: str
    replaced_by: str
    print_count: int
    last_print_state: SecurityCardPrintState
    braille_card_user: bool
    layout: SecurityCardLayout
    def __init__(self, serial: _Optional[str] = ..., customer_id: _Optional[str] = ..., medium: _Optional[_Union[SecurityCardMedium, str]] = ..., state: _Optional[_Union[SecurityCardState, str]] = ..., failures: _Optional[int] = ..., max_failures: _Optional[int] = ..., attempts_left: _Optional[int] = ..., code_count: _Optional[int] = ..., code_digits: _Optional[int] = ..., issued_at: _Optional[float] = ..., updated_at: _Optional[float] = ..., replaces: _Optional[str] = ..., replaced_by: _Optional[str] = ..., print_count: _Optional[int] = ..., last_print_state: _Optional[_Union[SecurityCardPrintState, str]] = ..., braille_card_user: _Optional[bool] = ..., layout: _Optional[_Union[SecurityCardLayout, str]] = ...) -> None: ...

class SecurityCardPrintJob(_message.Message):
    __slots__ = ("job_id", "state", "failure", "message", "device", "pages", "bytes")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    PAGES_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: SecurityCardPrintState
    failure: SecurityCardPrintFailure
    message: str
    device: str
    pages: int
    bytes: int
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[_Union[SecurityCardPrintState, str]] = ..., failure: _Optional[_Union[SecurityCardPrintFailure, str]] = ..., message: _Optional[str] = ..., device: _Optional[str] = ..., pages: _Optional[int] = ..., bytes: _Optional[int] = ...) -> None: ...

class IssueSecurityCardRequest(_message.Message):
    __slots__ = ("customer_id", "medium", "layout", "include_svg")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    MEDIUM_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_SVG_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    medium: SecurityCardMedium
    layout: SecurityCardLayout
    include_svg: bool
    def __init__(self, customer_id: _Optional[str] = ..., medium: _Optional[_Union[SecurityCardMedium, str]] = ..., layout: _Optional[_Union[SecurityCardLayout, str]] = ..., include_svg: _Optional[bool] = ...) -> None: ...

class IssueSecurityCardResponse(_message.Message):
    __slots__ = ("card", "print_job", "masked_preview", "masked_svg")
    CARD_FIELD_NUMBER: _ClassVar[int]
    PRINT_JOB_FIELD_NUMBER: _ClassVar[int]
    MASKED_PREVIEW_FIELD_NUMBER: _ClassVar[int]
    MASKED_SVG_FIELD_NUMBER: _ClassVar[int]
    card: SecurityCardStatus
    print_job: SecurityCardPrintJob
    masked_preview: str
    masked_svg: str
    def __init__(self, card: _Optional[_Union[SecurityCardStatus, _Mapping]] = ..., print_job: _Optional[_Union[SecurityCardPrintJob, _Mapping]] = ..., masked_preview: _Optional[str] = ..., masked_svg: _Optional[str] = ...) -> None: ...

class ReplaceSecurityCardRequest(_message.Message):
    __slots__ = ("serial", "medium", "layout", "reason", "include_svg")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    MEDIUM_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_SVG_FIELD_NUMBER: _ClassVar[int]
    serial: str
    medium: SecurityCardMedium
    layout: SecurityCardLayout
    reason: str
    include_svg: bool
    def __init__(self, serial: _Optional[str] = ..., medium: _Optional[_Union[SecurityCardMedium, str]] = ..., layout: _Optional[_Union[SecurityCardLayout, str]] = ..., reason: _Optional[str] = ..., include_svg: _Optional[bool] = ...) -> None: ...

class ReprintSecurityCardRequest(_message.Message):
    __slots__ = ("serial", "layout", "reason")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    serial: str
    layout: SecurityCardLayout
    reason: str
    def __init__(self, serial: _Optional[str] = ..., layout: _Optional[_Union[SecurityCardLayout, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class ReprintSecurityCardResponse(_message.Message):
    __slots__ = ("card", "print_job")
    CARD_FIELD_NUMBER: _ClassVar[int]
    PRINT_JOB_FIELD_NUMBER: _ClassVar[int]
    card: SecurityCardStatus
    print_job: SecurityCardPrintJob
    def __init__(self, card: _Optional[_Union[SecurityCardStatus, _Mapping]] = ..., print_job: _Optional[_Union[SecurityCardPrintJob, _Mapping]] = ...) -> None: ...

class RevokeSecurityCardRequest(_message.Message):
    __slots__ = ("serial", "reason")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    serial: str
    reason: str
    def __init__(self, serial: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ResetSecurityCardRequest(_message.Message):
    __slots__ = ("serial", "reason")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    serial: str
    reason: str
    def __init__(self, serial: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class GetSecurityCardRequest(_message.Message):
    __slots__ = ("serial",)
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    serial: str
    def __init__(self, serial: _Optional[str] = ...) -> None: ...

class GetSecurityCardHolderRequest(_message.Message):
    __slots__ = ("customer_id",)
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    def __init__(self, customer_id: _Optional[str] = ...) -> None: ...

class SecurityCardHolder(_message.Message):
    __slots__ = ("customer_id", "active_serial", "braille_card_user", "additional_authentication_exempt", "exemption_reason")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    BRAILLE_CARD_USER_FIELD_NUMBER: _ClassVar[int]
    ADDITIONAL_AUTHENTICATION_EXEMPT_FIELD_NUMBER: _ClassVar[int]
    EXEMPTION_REASON_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    active_serial: str
    braille_card_user: bool
    additional_authentication_exempt: bool
    exemption_reason: str
    def __init__(self, customer_id: _Optional[str] = ..., active_serial: _Optional[str] = ..., braille_card_user: _Optional[bool] = ..., additional_authentication_exempt: _Optional[bool] = ..., exemption_reason: _Optional[str] = ...) -> None: ...

class StartSecurityCardChallengeRequest(_message.Message):
    __slots__ = ("serial", "customer_id")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    serial: str
    customer_id: str
    def __init__(self, serial: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class SecurityCardDigitRequest(_message.Message):
    __slots__ = ("code_number", "digit_positions")
    CODE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    DIGIT_POSITIONS_FIELD_NUMBER: _ClassVar[int]
    code_number: int
    digit_positions: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, code_number: _Optional[int] = ..., digit_positions: _Optional[_Iterable[int]] = ...) -> None: ...

class SecurityCardChallenge(_message.Message):
    __slots__ = ("challenge_id", "serial", "first", "second", "answer_length", "expires_at", "prompt_text", "prompt_braille", "prompt_brf", "braille_card")
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    FIRST_FIELD_NUMBER: _ClassVar[int]
    SECOND_FIELD_NUMBER: _ClassVar[int]
    ANSWER_LENGTH_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TEXT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_BRAILLE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_BRF_FIELD_NUMBER: _ClassVar[int]
    BRAILLE_CARD_FIELD_NUMBER: _ClassVar[int]
    challenge_id: str
    serial: str
    first: SecurityCardDigitRequest
    second: SecurityCardDigitRequest
    answer_length: int
    expires_at: float
    prompt_text: str
    prompt_braille: str
    prompt_brf: str
    braille_card: bool
    def __init__(self, challenge_id: _Optional[str] = ..., serial: _Optional[str] = ..., first: _Optional[_Union[SecurityCardDigitRequest, _Mapping]] = ..., second: _Optional[_Union[SecurityCardDigitRequest, _Mapping]] = ..., answer_length: _Optional[int] = ..., expires_at: _Optional[float] = ..., prompt_text: _Optional[str] = ..., prompt_braille: _Optional[str] = ..., prompt_brf: _Optional[str] = ..., braille_card: _Optional[bool] = ...) -> None: ...

class VerifySecurityCardAnswerRequest(_message.Message):
    __slots__ = ("challenge_id", "answer")
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    challenge_id: str
    answer: str
    def __init__(self, challenge_id: _Optional[str] = ..., answer: _Optional[str] = ...) -> None: ...

class VerifySecurityCardAnswerResponse(_message.Message):
    __slots__ = ("outcome", "accepted", "serial", "card_state", "failures", "attempts_left", "message_text", "message_braille")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    CARD_STATE_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_LEFT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_TEXT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_BRAILLE_FIELD_NUMBER: _ClassVar[int]
    outcome: SecurityCardOutcome
    accepted: bool
    serial: str
    card_state: SecurityCardState
    failures: int
    attempts_left: int
    message_text: str
    message_braille: str
    def __init__(self, outcome: _Optional[_Union[SecurityCardOutcome, str]] = ..., accepted: _Optional[bool] = ..., serial: _Optional[str] = ..., card_state: _Optional[_Union[SecurityCardState, str]] = ..., failures: _Optional[int] = ..., attempts_left: _Optional[int] = ..., message_text: _Optional[str] = ..., message_braille: _Optional[str] = ...) -> None: ...

class SecurityCardPrintRelease(_message.Message):
    __slots__ = ("card", "job", "job_name", "masked_preview", "masked_svg")
    CARD_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    JOB_NAME_FIELD_NUMBER: _ClassVar[int]
    MASKED_PREVIEW_FIELD_NUMBER: _ClassVar[int]
    MASKED_SVG_FIELD_NUMBER: _ClassVar[int]
    card: SecurityCardStatus
    job: bytes
    job_name: str
    masked_preview: str
    masked_svg: str
    def __init__(self, card: _Optional[_Union[SecurityCardStatus, _Mapping]] = ..., job: _Optional[bytes] = ..., job_name: _Optional[str] = ..., masked_preview: _Optional[str] = ..., masked_svg: _Optional[str] = ...) -> None: ...

class RecordSecurityCardPrintRequest(_message.Message):
    __slots__ = ("serial", "print_job", "reprint", "reason")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    PRINT_JOB_FIELD_NUMBER: _ClassVar[int]
    REPRINT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    serial: str
    print_job: SecurityCardPrintJob
    reprint: bool
    reason: str
    def __init__(self, serial: _Optional[str] = ..., print_job: _Optional[_Union[SecurityCardPrintJob, _Mapping]] = ..., reprint: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...
