from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DecisionOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_OUTCOME_UNSPECIFIED: _ClassVar[DecisionOutcome]
    DECISION_APPROVED: _ClassVar[DecisionOutcome]
    DECISION_ADDITIONAL_AUTHENTICATION_REQUIRED: _ClassVar[DecisionOutcome]
    DECISION_OVER_LIMIT: _ClassVar[DecisionOutcome]
    DECISION_SUSPENDED: _ClassVar[DecisionOutcome]
    DECISION_MEDIUM_REFUSED: _ClassVar[DecisionOutcome]
    DECISION_DEVICE_ON_INCIDENT_LIST: _ClassVar[DecisionOutcome]
    DECISION_AUTHENTICATION_FAILED: _ClassVar[DecisionOutcome]
    DECISION_DUPLICATE: _ClassVar[DecisionOutcome]

class CustomerKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CUSTOMER_KIND_UNSPECIFIED: _ClassVar[CustomerKind]
    CUSTOMER_KIND_PERSONAL: _ClassVar[CustomerKind]
    CUSTOMER_KIND_CORPORATE: _ClassVar[CustomerKind]

class SecurityGrade(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SECURITY_GRADE_UNSPECIFIED: _ClassVar[SecurityGrade]
    SECURITY_GRADE_PERSONAL_SAFE: _ClassVar[SecurityGrade]
    SECURITY_GRADE_PERSONAL_GENERAL: _ClassVar[SecurityGrade]
    SECURITY_GRADE_CORPORATE_SAFE: _ClassVar[SecurityGrade]

class ReceivingAccount(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECEIVING_ACCOUNT_UNSPECIFIED: _ClassVar[ReceivingAccount]
    RECEIVING_OWN_ACCOUNT: _ClassVar[ReceivingAccount]
    RECEIVING_OTHER: _ClassVar[ReceivingAccount]

class TransferChannel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRANSFER_CHANNEL_UNSPECIFIED: _ClassVar[TransferChannel]
    CHANNEL_INTERNET_BANKING: _ClassVar[TransferChannel]
    CHANNEL_E_COMMERCE: _ClassVar[TransferChannel]
    CHANNEL_ARS_ATM: _ClassVar[TransferChannel]
    CHANNEL_E_MONEY: _ClassVar[TransferChannel]

class TransferPurpose(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRANSFER_PURPOSE_UNSPECIFIED: _ClassVar[TransferPurpose]
    PURPOSE_TRANSFER: _ClassVar[TransferPurpose]
    PURPOSE_OWN_ACCOUNT_INQUIRY: _ClassVar[TransferPurpose]

class AdditionalAuthentication(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ADDITIONAL_AUTHENTICATION_NONE: _ClassVar[AdditionalAuthentication]
    ADDITIONAL_SMS: _ClassVar[AdditionalAuthentication]
    ADDITIONAL_ARS: _ClassVar[AdditionalAuthentication]
    ADDITIONAL_TWO_CHANNEL: _ClassVar[AdditionalAuthentication]

class CorporateRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CORPORATE_ROLE_UNSPECIFIED: _ClassVar[CorporateRole]
    CORPORATE_MASTER: _ClassVar[CorporateRole]
    CORPORATE_EMPLOYEE: _ClassVar[CorporateRole]

class PolicyMedium(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    POLICY_MEDIUM_UNSPECIFIED: _ClassVar[PolicyMedium]
    POLICY_MEDIUM_OTP: _ClassVar[PolicyMedium]
    POLICY_MEDIUM_SECURITY_CARD: _ClassVar[PolicyMedium]
    POLICY_MEDIUM_TOKEN: _ClassVar[PolicyMedium]
    POLICY_MEDIUM_SMARTCARD: _ClassVar[PolicyMedium]

class InputKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INPUT_KIND_UNSPECIFIED: _ClassVar[InputKind]
    INPUT_USER_PASSWORD: _ClassVar[InputKind]
    INPUT_CERTIFICATE_PASSWORD: _ClassVar[InputKind]
    INPUT_SECURITY_CARD_ANSWER: _ClassVar[InputKind]
    INPUT_ACCOUNT_PASSWORD: _ClassVar[InputKind]

class LiftChannel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LIFT_CHANNEL_UNSPECIFIED: _ClassVar[LiftChannel]
    LIFT_ONLINE: _ClassVar[LiftChannel]
    LIFT_CALL_CENTRE: _ClassVar[LiftChannel]
    LIFT_BRANCH: _ClassVar[LiftChannel]
DECISION_OUTCOME_UNSPECIFIED: DecisionOutcome
DECISION_APPROVED: DecisionOutcome
DECISION_ADDITIONAL_AUTHENTICATION_REQUIRED: DecisionOutcome
DECISION_OVER_LIMIT: DecisionOutcome
DECISION_SUSPENDED: DecisionOutcome
DECISION_MEDIUM_REFUSED: DecisionOutcome
DECISION_DEVICE_ON_INCIDENT_LIST: DecisionOutcome
DECISION_AUTHENTICATION_FAILED: DecisionOutcome
DECISION_DUPLICATE: DecisionOutcome
CUSTOMER_KIND_UNSPECIFIED: CustomerKind
CUSTOMER_KIND_PERSONAL: CustomerKind
CUSTOMER_KIND_CORPORATE: CustomerKind
SECURITY_GRADE_UNSPECIFIED: SecurityGrade
SECURITY_GRADE_PERSONAL_SAFE: SecurityGrade
SECURITY_GRADE_PERSONAL_GENERAL: SecurityGrade
SECURITY_GRADE_CORPORATE_SAFE: SecurityGrade
RECEIVING_ACCOUNT_UNSPECIFIED: ReceivingAccount
RECEIVING_OWN_ACCOUNT: ReceivingAccount
RECEIVING_OTHER: ReceivingAccount
TRANSFER_CHANNEL_UNSPECIFIED: TransferChannel
CHANNEL_INTERNET_BANKING: TransferChannel
CHANNEL_E_COMMERCE: TransferChannel
CHANNEL_ARS_ATM: TransferChannel
CHANNEL_E_MONEY: TransferChannel
TRANSFER_PURPOSE_UNSPECIFIED: TransferPurpose
PURPOSE_TRANSFER: TransferPurpose
PURPOSE_OWN_ACCOUNT_INQUIRY: TransferPurpose
ADDITIONAL_AUTHENTICATION_NONE: AdditionalAuthentication
ADDITIONAL_SMS: AdditionalAuthentication
ADDITIONAL_ARS: AdditionalAuthentication
ADDITIONAL_TWO_CHANNEL: AdditionalAuthentication
CORPORATE_ROLE_UNSPECIFIED: CorporateRole
CORPORATE_MASTER: CorporateRole
CORPORATE_EMPLOYEE: CorporateRole
POLICY_MEDIUM_UNSPECIFIED: PolicyMedium
POLICY_MEDIUM_OTP: PolicyMedium
POLICY_MEDIUM_SECURITY_CARD: PolicyMedium
POLICY_MEDIUM_TOKEN: PolicyMedium
POLICY_MEDIUM_SMARTCARD: PolicyMedium
INPUT_KIND_UNSPECIFIED: InputKind
INPUT_USER_PASSWORD: InputKind
INPUT_CERTIFICATE_PASSWORD: InputKind
INPUT_SECURITY_CARD_ANSWER: InputKind
INPUT_ACCOUNT_PASSWORD: InputKind
LIFT_CHANNEL_UNSPECIFIED: LiftChannel
LIFT_ONLINE: LiftChannel
LIFT_CALL_CENTRE: LiftChannel
LIFT_BRANCH: LiftChannel

class DeviceInfo(_message.Message):
    __slots__ = ("ip", "mac", "hdd_serial", "usb_serial", "os_version", "browser_version", "phone_id")
    IP_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    HDD_SERIAL_FIELD_NUMBER: _ClassVar[int]
    USB_SERIAL_FIELD_NUMBER: _ClassVar[int]
    OS_VERSION_FIELD_NUMBER: _ClassVar[int]
    BROWSER_VERSION_FIELD_NUMBER: _ClassVar[int]
    PHONE_ID_FIELD_NUMBER: _ClassVar[int]
    ip: str
    mac: str
    hdd_serial: str
    usb_serial: str
    os_version: str
    browser_version: str
    phone_id: str
    def __init__(self, ip: _Optional[str] = ..., mac: _Optional[str] = ..., hdd_serial: _Optional[str] = ..., usb_serial: _Optional[str] = ..., os_version: _Optional[str] = ..., browser_version: _Optional[str] = ..., phone_id: _Optional[str] = ...) -> None: ...

class OtpPresented(_message.Message):
    __slots__ = ("serial", "code")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    serial: str
    code: str
    def __init__(self, serial: _Optional[str] = ..., code: _Optional[str] = ...) -> None: ...

class SecurityCardPresented(_message.Message):
    __slots__ = ("challenge_id", "answer")
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    challenge_id: str
    answer: str
    def __init__(self, challenge_id: _Optional[str] = ..., answer: _Optional[str] = ...) -> None: ...

class SignaturePresented(_message.Message):
    __slots__ = ("medium", "serial", "signature", "algorithm")
    MEDIUM_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    medium: PolicyMedium
    serial: str
    signature: bytes
    algorithm: str
    def __init__(self, medium: _Optional[_Union[PolicyMedium, str]] = ..., serial: _Optional[str] = ..., signature: _Optional[bytes] = ..., algorithm: _Optional[str] = ...) -> None: ...

class AuthorizeTransferRequest(_message.Message):
    __slots__ = ("customer_id", "amount_krw", "receiving", "to_account", "channel", "purpose", "device", "otp", "security_card", "signature", "additional_done", "corporate_role", "idempotency_key")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_KRW_FIELD_NUMBER: _ClassVar[int]
    RECEIVING_FIELD_NUMBER: _ClassVar[int]
    TO_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    OTP_FIELD_NUMBER: _ClassVar[int]
    SECURITY_CARD_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    ADDITIONAL_DONE_FIELD_NUMBER: _ClassVar[int]
    CORPORATE_ROLE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    amount_krw: int
    receiving: ReceivingAccount
    to_account: str
    channel: TransferChannel
    purpose: TransferPurpose
    device: DeviceInfo
    otp: OtpPresented
    security_card: SecurityCardPresented
    signature: SignaturePresented
    additional_done: AdditionalAuthentication
    corporate_role: CorporateRole
    idempotency_key: str
    def __init__(self, customer_id: _Optional[str] = ..., amount_krw: _Optional[int] = ..., receiving: _Optional[_Union[ReceivingAccount, str]] = ..., to_account: _Optional[str] = ..., channel: _Optional[_Union[TransferChannel, str]] = ..., purpose: _Optional[_Union[TransferPurpose, str]] = ..., device: _Optional[_Union[DeviceInfo, _Mapping]] = ..., otp: _Optional[_Union[OtpPresented, _Mapping]] = ..., security_card: _Optional[_Union[SecurityCardPresented, _Mapping]] = ..., signature: _Optional[_Union[SignaturePresented, _Mapping]] = ..., additional_done: _Optional[_Union[AdditionalAuthentication, str]] = ..., corporate_role: _Optional[_Union[CorporateRole, str]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class DecisionReason(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class TransferDecision(_message.Message):
    __slots__ = ("decision_id", "outcome", "reasons", "message", "grade", "per_transfer_limit_krw", "daily_limit_krw", "consumed_krw", "used_today_krw", "daily_left_krw", "additional_kinds", "exemptions", "no_certificate", "attempts_left", "day", "decided_at", "first_decision", "released", "device", "customer_id", "amount_krw")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    GRADE_FIELD_NUMBER: _ClassVar[int]
    PER_TRANSFER_LIMIT_KRW_FIELD_NUMBER: _ClassVar[int]
    DAILY_LIMIT_KRW_FIELD_NUMBER: _ClassVar[int]
    CONSUMED_KRW_FIELD_NUMBER: _ClassVar[int]
    USED_TODAY_KRW_FIELD_NUMBER: _ClassVar[int]
    DAILY_LEFT_KRW_FIELD_NUMBER: _ClassVar[int]
    ADDITIONAL_KINDS_FIELD_NUMBER: _ClassVar[int]
    EXEMPTIONS_FIELD_NUMBER: _ClassVar[int]
    NO_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_LEFT_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    FIRST_DECISION_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_KRW_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    outcome: DecisionOutcome
    reasons: _containers.RepeatedCompositeFieldContainer[DecisionReason]
    message: str
    grade: SecurityGrade
    per_transfer_limit_krw: int
    daily_limit_krw: int
    consumed_krw: int
    used_today_krw: int
    daily_left_krw: int
    additional_kinds: _containers.RepeatedScalarFieldContainer[AdditionalAuthentication]
    exemptions: _containers.RepeatedScalarFieldContainer[str]
    no_certificate: str
    attempts_left: int
    day: str
    decided_at: float
    first_decision: TransferDecision
    released: bool
    device: DeviceInfo
    customer_id: str
    amount_krw: int
    def __init__(self, decision_id: _Optional[str] = ..., outcome: _Optional[_Union[DecisionOutcome, str]] = ..., reasons: _Optional[_Iterable[_Union[DecisionReason, _Mapping]]] = ..., message: _Optional[str] = ..., grade: _Optional[_Union[SecurityGrade, str]] = ..., per_transfer_limit_krw: _Optional[int] = ..., daily_limit_krw: _Optional[int] = ..., consumed_krw: _Optional[int] = ..., used_today_krw: _Optional[int] = ..., daily_left_krw: _Optional[int] = ..., additional_kinds: _Optional[_Iterable[_Union[AdditionalAuthentication, str]]] = ..., exemptions: _Optional[_Iterable[str]] = ..., no_certificate: _Optional[str] = ..., attempts_left: _Optional[int] = ..., day: _Optional[str] = ..., decided_at: _Optional[float] = ..., first_decision: _Optional[_Union[TransferDecision, _Mapping]] = ..., released: _Optional[bool] = ..., device: _Optional[_Union[DeviceInfo, _Mapping]] = ..., customer_id: _Optional[str] = ..., amount_krw: _Optional[int] = ...) -> None: ...

class CancelTransferRequest(_message.Message):
    __slots__ = ("decision_id", "reason")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    reason: str
    def __init__(self, decision_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ExplainDecisionRequest(_message.Message):
    __slots__ = ("decision_id",)
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    def __init__(self, decision_id: _Optional[str] = ...) -> None: ...

class PolicyCustomerRef(_message.Message):
    __slots__ = ("customer_id",)
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    def __init__(self, customer_id: _Optional[str] = ...) -> None: ...

class CustomerAgreements(_message.Message):
    __slots__ = ("special_agreement", "sms_result_notice", "overseas_departure_confirmed")
    SPECIAL_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    SMS_RESULT_NOTICE_FIELD_NUMBER: _ClassVar[int]
    OVERSEAS_DEPARTURE_CONFIRMED_FIELD_NUMBER: _ClassVar[int]
    special_agreement: bool
    sms_result_notice: bool
    overseas_departure_confirmed: bool
    def __init__(self, special_agreement: _Optional[bool] = ..., sms_result_notice: _Optional[bool] = ..., overseas_departure_confirmed: _Optional[bool] = ...) -> None: ...

class SetupCustomerRequest(_message.Message):
    __slots__ = ("customer_id", "kind", "agreements", "operator_id", "master_administrator")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AGREEMENTS_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    MASTER_ADMINISTRATOR_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    kind: CustomerKind
    agreements: CustomerAgreements
    operator_id: str
    master_administrator: bool
    def __init__(self, customer_id: _Optional[str] = ..., kind: _Optional[_Union[CustomerKind, str]] = ..., agreements: _Optional[_Union[CustomerAgreements, _Mapping]] = ..., operator_id: _Optional[str] = ..., master_administrator: _Optional[bool] = ...) -> None: ...

class SetAgreementsRequest(_message.Message):
    __slots__ = ("customer_id", "agreements", "operator_id")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    AGREEMENTS_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    agreements: CustomerAgreements
    operator_id: str
    def __init__(self, customer_id: _Optional[str] = ..., agreements: _Optional[_Union[CustomerAgreements, _Mapping]] = ..., operator_id: _Optional[str] = ...) -> None: ...

class GradeLimits(_message.Message):
    __slots__ = ("grade", "max_per_transfer_krw", "max_daily_krw", "per_transfer_krw", "daily_krw")
    GRADE_FIELD_NUMBER: _ClassVar[int]
    MAX_PER_TRANSFER_KRW_FIELD_NUMBER: _ClassVar[int]
    MAX_DAILY_KRW_FIELD_NUMBER: _ClassVar[int]
    PER_TRANSFER_KRW_FIELD_NUMBER: _ClassVar[int]
    DAILY_KRW_FIELD_NUMBER: _ClassVar[int]
    grade: SecurityGrade
    max_per_transfer_krw: int
    max_daily_krw: int
    per_transfer_krw: int
    daily_krw: int
    def __init__(self, grade: _Optional[_Union[SecurityGrade, str]] = ..., max_per_transfer_krw: _Optional[int] = ..., max_daily_krw: _Optional[int] = ..., per_transfer_krw: _Optional[int] = ..., daily_krw: _Optional[int] = ...) -> None: ...

class HeldMedium(_message.Message):
    __slots__ = ("medium", "serial", "state", "braille", "issued_here", "registered_at_branch")
    MEDIUM_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    BRAILLE_FIELD_NUMBER: _ClassVar[int]
    ISSUED_HERE_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_BRANCH_FIELD_NUMBER: _ClassVar[int]
    medium: PolicyMedium
    serial: str
    state: str
    braille: bool
    issued_here: bool
    registered_at_branch: bool
    def __init__(self, medium: _Optional[_Union[PolicyMedium, str]] = ..., serial: _Optional[str] = ..., state: _Optional[str] = ..., braille: _Optional[bool] = ..., issued_here: _Optional[bool] = ..., registered_at_branch: _Optional[bool] = ...) -> None: ...

class InputCounter(_message.Message):
    __slots__ = ("kind", "failures", "restricted", "threshold", "attempts_left", "message")
    KIND_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    RESTRICTED_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_LEFT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    kind: InputKind
    failures: int
    restricted: bool
    threshold: int
    attempts_left: int
    message: str
    def __init__(self, kind: _Optional[_Union[InputKind, str]] = ..., failures: _Optional[int] = ..., restricted: _Optional[bool] = ..., threshold: _Optional[int] = ..., attempts_left: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class PolicyCustomer(_message.Message):
    __slots__ = ("customer_id", "kind", "agreements", "best_grade", "grades", "own_per_transfer_krw", "own_daily_krw", "contract_reference", "contract_grade", "media", "day", "used_today_krw", "suspension", "counters", "designated_terminals", "agreed_at", "registered_at", "last_used_at")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AGREEMENTS_FIELD_NUMBER: _ClassVar[int]
    BEST_GRADE_FIELD_NUMBER: _ClassVar[int]
    GRADES_FIELD_NUMBER: _ClassVar[int]
    OWN_PER_TRANSFER_KRW_FIELD_NUMBER: _ClassVar[int]
    OWN_DAILY_KRW_FIELD_NUMBER: _ClassVar[int]
    CONTRACT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    CONTRACT_GRADE_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    USED_TODAY_KRW_FIELD_NUMBER: _ClassVar[int]
    SUSPENSION_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    DESIGNATED_TERMINALS_FIELD_NUMBER: _ClassVar[int]
    AGREED_AT_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_AT_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    kind: CustomerKind
    agreements: CustomerAgreements
    best_grade: SecurityGrade
    grades: _containers.RepeatedCompositeFieldContainer[GradeLimits]
    own_per_transfer_krw: int
    own_daily_krw: int
    contract_reference: str
    contract_grade: SecurityGrade
    media: _containers.RepeatedCompositeFieldContainer[HeldMedium]
    day: str
    used_today_krw: int
    suspension: str
    counters: _containers.RepeatedCompositeFieldContainer[InputCounter]
    designated_terminals: int
    agreed_at: float
    registered_at: float
    last_used_at: float
    def __init__(self, customer_id: _Optional[str] = ..., kind: _Optional[_Union[CustomerKind, str]] = ..., agreements: _Optional[_Union[CustomerAgreements, _Mapping]] = ..., best_grade: _Optional[_Union[SecurityGrade, str]] = ..., grades: _Optional[_Iterable[_Union[GradeLimits, _Mapping]]] = ..., own_per_transfer_krw: _Optional[int] = ..., own_daily_krw: _Optional[int] = ..., contract_reference: _Optional[str] = ..., contract_grade: _Optional[_Union[SecurityGrade, str]] = ..., media: _Optional[_Iterable[_Union[HeldMedium, _Mapping]]] = ..., day: _Optional[str] = ..., used_today_krw: _Optional[int] = ..., suspension: _Optional[str] = ..., counters: _Optional[_Iterable[_Union[InputCounter, _Mapping]]] = ..., designated_terminals: _Optional[int] = ..., agreed_at: _Optional[float] = ..., registered_at: _Optional[float] = ..., last_used_at: _Optional[float] = ...) -> None: ...

class SetLimitsRequest(_message.Message):
    __slots__ = ("customer_id", "per_transfer_krw", "daily_krw", "operator_id")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PER_TRANSFER_KRW_FIELD_NUMBER: _ClassVar[int]
    DAILY_KRW_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    per_transfer_krw: int
    daily_krw: int
    operator_id: str
    def __init__(self, customer_id: _Optional[str] = ..., per_transfer_krw: _Optional[int] = ..., daily_krw: _Optional[int] = ..., operator_id: _Optional[str] = ...) -> None: ...

class RecordContractRequest(_message.Message):
    __slots__ = ("customer_id", "reference", "grade", "per_transfer_krw", "daily_krw", "operator_id")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    GRADE_FIELD_NUMBER: _ClassVar[int]
    PER_TRANSFER_KRW_FIELD_NUMBER: _ClassVar[int]
    DAILY_KRW_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    reference: str
    grade: SecurityGrade
    per_transfer_krw: int
    daily_krw: int
    operator_id: str
    def __init__(self, customer_id: _Optional[str] = ..., reference: _Optional[str] = ..., grade: _Optional[_Union[SecurityGrade, str]] = ..., per_transfer_krw: _Optional[int] = ..., daily_krw: _Optional[int] = ..., operator_id: _Optional[str] = ...) -> None: ...

class LiftSuspensionRequest(_message.Message):
    __slots__ = ("customer_id", "channel", "strong_login", "age", "operator_id")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    STRONG_LOGIN_FIELD_NUMBER: _ClassVar[int]
    AGE_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    channel: LiftChannel
    strong_login: bool
    age: int
    operator_id: str
    def __init__(self, customer_id: _Optional[str] = ..., channel: _Optional[_Union[LiftChannel, str]] = ..., strong_login: _Optional[bool] = ..., age: _Optional[int] = ..., operator_id: _Optional[str] = ...) -> None: ...

class DesignateTerminalRequest(_message.Message):
    __slots__ = ("customer_id", "label", "device", "additional_done")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    ADDITIONAL_DONE_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    label: str
    device: DeviceInfo
    additional_done: AdditionalAuthentication
    def __init__(self, customer_id: _Optional[str] = ..., label: _Optional[str] = ..., device: _Optional[_Union[DeviceInfo, _Mapping]] = ..., additional_done: _Optional[_Union[AdditionalAuthentication, str]] = ...) -> None: ...

class DesignatedTerminal(_message.Message):
    __slots__ = ("terminal_id", "label", "device", "channel", "registered_at")
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    terminal_id: str
    label: str
    device: DeviceInfo
    channel: str
    registered_at: float
    def __init__(self, terminal_id: _Optional[str] = ..., label: _Optional[str] = ..., device: _Optional[_Union[DeviceInfo, _Mapping]] = ..., channel: _Optional[str] = ..., registered_at: _Optional[float] = ...) -> None: ...

class ListTerminalsResponse(_message.Message):
    __slots__ = ("terminals",)
    TERMINALS_FIELD_NUMBER: _ClassVar[int]
    terminals: _containers.RepeatedCompositeFieldContainer[DesignatedTerminal]
    def __init__(self, terminals: _Optional[_Iterable[_Union[DesignatedTerminal, _Mapping]]] = ...) -> None: ...

class RemoveTerminalRequest(_message.Message):
    __slots__ = ("customer_id", "terminal_id", "reason")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    terminal_id: str
    reason: str
    def __init__(self, customer_id: _Optional[str] = ..., terminal_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RemoveTerminalResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReportInputRequest(_message.Message):
    __slots__ = ("customer_id", "kind", "correct")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CORRECT_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    kind: InputKind
    correct: bool
    def __init__(self, customer_id: _Optional[str] = ..., kind: _Optional[_Union[InputKind, str]] = ..., correct: _Optional[bool] = ...) -> None: ...

class UnlockInputRequest(_message.Message):
    __slots__ = ("customer_id", "kind", "password_correct", "identity_checked", "operator_id")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_CORRECT_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_CHECKED_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    kind: InputKind
    password_correct: bool
    identity_checked: bool
    operator_id: str
    def __init__(self, customer_id: _Optional[str] = ..., kind: _Optional[_Union[InputKind, str]] = ..., password_correct: _Optional[bool] = ..., identity_checked: _Optional[bool] = ..., operator_id: _Optional[str] = ...) -> None: ...

class DeviceIncident(_message.Message):
    __slots__ = ("incident_id", "field", "value", "reason", "reported_at")
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    incident_id: str
    field: str
    value: str
    reason: str
    reported_at: float
    def __init__(self, incident_id: _Optional[str] = ..., field: _Optional[str] = ..., value: _Optional[str] = ..., reason: _Optional[str] = ..., reported_at: _Optional[float] = ...) -> None: ...

class ReportIncidentRequest(_message.Message):
    __slots__ = ("device", "reason")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    device: DeviceInfo
    reason: str
    def __init__(self, device: _Optional[_Union[DeviceInfo, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class ReportIncidentResponse(_message.Message):
    __slots__ = ("incidents",)
    INCIDENTS_FIELD_NUMBER: _ClassVar[int]
    incidents: _containers.RepeatedCompositeFieldContainer[DeviceIncident]
    def __init__(self, incidents: _Optional[_Iterable[_Union[DeviceIncident, _Mapping]]] = ...) -> None: ...

class CheckDeviceRequest(_message.Message):
    __slots__ = ("device",)
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    device: DeviceInfo
    def __init__(self, device: _Optional[_Union[DeviceInfo, _Mapping]] = ...) -> None: ...

class CheckDeviceResponse(_message.Message):
    __slots__ = ("listed", "fields")
    LISTED_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    listed: bool
    fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, listed: _Optional[bool] = ..., fields: _Optional[_Iterable[str]] = ...) -> None: ...

class ListIncidentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListIncidentsResponse(_message.Message):
    __slots__ = ("incidents",)
    INCIDENTS_FIELD_NUMBER: _ClassVar[int]
    incidents: _containers.RepeatedCompositeFieldContainer[DeviceIncident]
    def __init__(self, incidents: _Optional[_Iterable[_Union[DeviceIncident, _Mapping]]] = ...) -> None: ...

class WithdrawIncidentRequest(_message.Message):
    __slots__ = ("incident_id", "reason")
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    incident_id: str
    reason: str
    def __init__(self, incident_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class WithdrawIncidentResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ExportRecordsRequest(_message.Message):
    __slots__ = ("customer_id", "since", "until")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    since: float
    until: float
    def __init__(self, customer_id: _Optional[str] = ..., since: _Optional[float] = ..., until: _Optional[float] = ...) -> None: ...

class ExportRecordsResponse(_message.Message):
    __slots__ = ("decisions", "terminals", "truncated")
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    TERMINALS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    decisions: _containers.RepeatedCompositeFieldContainer[TransferDecision]
    terminals: _containers.RepeatedCompositeFieldContainer[DesignatedTerminal]
    truncated: bool
    def __init__(self, decisions: _Optional[_Iterable[_Union[TransferDecision, _Mapping]]] = ..., terminals: _Optional[_Iterable[_Union[DesignatedTerminal, _Mapping]]] = ..., truncated: _Optional[bool] = ...) -> None: ...
