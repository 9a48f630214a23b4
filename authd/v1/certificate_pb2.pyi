from authd.v1 import policy_pb2 as _policy_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IssuanceStep(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ISSUANCE_STEP_UNSPECIFIED: _ClassVar[IssuanceStep]
    ISSUANCE_STEP_TYPE: _ClassVar[IssuanceStep]
    ISSUANCE_STEP_IDENTITY: _ClassVar[IssuanceStep]
    ISSUANCE_STEP_SECURITY_MEANS: _ClassVar[IssuanceStep]
    ISSUANCE_STEP_ACCOUNT: _ClassVar[IssuanceStep]
    ISSUANCE_STEP_STORAGE: _ClassVar[IssuanceStep]

class IssuanceState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ISSUANCE_STATE_UNSPECIFIED: _ClassVar[IssuanceState]
    ISSUANCE_STATE_OPEN: _ClassVar[IssuanceState]
    ISSUANCE_STATE_ISSUED: _ClassVar[IssuanceState]
    ISSUANCE_STATE_CANCELLED: _ClassVar[IssuanceState]
    ISSUANCE_STATE_EXPIRED: _ClassVar[IssuanceState]
    ISSUANCE_STATE_REFUSED: _ClassVar[IssuanceState]

class StorageLocation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STORAGE_LOCATION_UNSPECIFIED: _ClassVar[StorageLocation]
    STORAGE_LOCATION_DISK: _ClassVar[StorageLocation]
    STORAGE_LOCATION_REMOVABLE_DISK: _ClassVar[StorageLocation]
    STORAGE_LOCATION_TOKEN: _ClassVar[StorageLocation]
    STORAGE_LOCATION_SMARTCARD: _ClassVar[StorageLocation]

class CertificateStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CERTIFICATE_STATUS_UNSPECIFIED: _ClassVar[CertificateStatus]
    CERTIFICATE_STATUS_ACTIVE: _ClassVar[CertificateStatus]
    CERTIFICATE_STATUS_SUSPENDED: _ClassVar[CertificateStatus]
    CERTIFICATE_STATUS_REVOKED: _ClassVar[CertificateStatus]
    CERTIFICATE_STATUS_EXPIRED: _ClassVar[CertificateStatus]

class RenewalState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RENEWAL_STATE_UNSPECIFIED: _ClassVar[RenewalState]
    RENEWAL_STATE_NOT_YET_VALID: _ClassVar[RenewalState]
    RENEWAL_STATE_VALID: _ClassVar[RenewalState]
    RENEWAL_STATE_RENEWABLE: _ClassVar[RenewalState]
    RENEWAL_STATE_EXPIRED: _ClassVar[RenewalState]

class RevocationReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REVOCATION_REASON_UNSPECIFIED: _ClassVar[RevocationReason]
    REVOCATION_REASON_SUBSCRIBER_REQUEST: _ClassVar[RevocationReason]
    REVOCATION_REASON_HOLDER_DEAD: _ClassVar[RevocationReason]
    REVOCATION_REASON_KEY_LOST: _ClassVar[RevocationReason]
    REVOCATION_REASON_KEY_LEAKED: _ClassVar[RevocationReason]
    REVOCATION_REASON_FRAUDULENT: _ClassVar[RevocationReason]
    REVOCATION_REASON_SUBSCRIBER_DATA_CHANGED: _ClassVar[RevocationReason]

class EndOfUse(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    END_OF_USE_UNSPECIFIED: _ClassVar[EndOfUse]
    END_OF_USE_EXPIRED: _ClassVar[EndOfUse]
    END_OF_USE_HOLDER_DEAD: _ClassVar[EndOfUse]
    END_OF_USE_KEY_LOST: _ClassVar[EndOfUse]
    END_OF_USE_KEY_LEAKED: _ClassVar[EndOfUse]
    END_OF_USE_FRAUDULENT: _ClassVar[EndOfUse]

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    VERDICT_VALID: _ClassVar[Verdict]
    VERDICT_NOT_YET_VALID: _ClassVar[Verdict]
    VERDICT_EXPIRED: _ClassVar[Verdict]
    VERDICT_REVOKED: _ClassVar[Verdict]
    VERDICT_SUSPENDED: _ClassVar[Verdict]
    VERDICT_UNTRUSTED: _ClassVar[Verdict]
    VERDICT_UNKNOWN: _ClassVar[Verdict]
    VERDICT_STATUS_UNAVAILABLE: _ClassVar[Verdict]
ISSUANCE_STEP_UNSPECIFIED: IssuanceStep
ISSUANCE_STEP_TYPE: IssuanceStep
ISSUANCE_STEP_IDENTITY: IssuanceStep
ISSUANCE_STEP_SECURITY_MEANS: IssuanceStep
ISSUANCE_STEP_ACCOUNT: IssuanceStep
ISSUANCE_STEP_STORAGE: IssuanceStep
ISSUANCE_STATE_UNSPECIFIED: IssuanceState
ISSUANCE_STATE_OPEN: IssuanceState
ISSUANCE_STATE_ISSUED: IssuanceState
ISSUANCE_STATE_CANCELLED: IssuanceState
ISSUANCE_STATE_EXPIRED: IssuanceState
ISSUANCE_STATE_REFUSED: IssuanceState
STORAGE_LOCATION_UNSPECIFIED: StorageLocation
STORAGE_LOCATION_DISK: StorageLocation
STORAGE_LOCATION_REMOVABLE_DISK: StorageLocation
STORAGE_LOCATION_TOKEN: StorageLocation
STORAGE_LOCATION_SMARTCARD: StorageLocation
CERTIFICATE_STATUS_UNSPECIFIED: CertificateStatus
CERTIFICATE_STATUS_ACTIVE: CertificateStatus
CERTIFICATE_STATUS_SUSPENDED: CertificateStatus
CERTIFICATE_STATUS_REVOKED: CertificateStatus
CERTIFICATE_STATUS_EXPIRED: CertificateStatus
RENEWAL_STATE_UNSPECIFIED: RenewalState
RENEWAL_STATE_NOT_YET_VALID: RenewalState
RENEWAL_STATE_VALID: RenewalState
RENEWAL_STATE_RENEWABLE: RenewalState
RENEWAL_STATE_EXPIRED: RenewalState
REVOCATION_REASON_UNSPECIFIED: RevocationReason
REVOCATION_REASON_SUBSCRIBER_REQUEST: RevocationReason
REVOCATION_REASON_HOLDER_DEAD: RevocationReason
REVOCATION_REASON_KEY_LOST: RevocationReason
REVOCATION_REASON_KEY_LEAKED: RevocationReason
REVOCATION_REASON_FRAUDULENT: RevocationReason
REVOCATION_REASON_SUBSCRIBER_DATA_CHANGED: RevocationReason
END_OF_USE_UNSPECIFIED: EndOfUse
END_OF_USE_EXPIRED: EndOfUse
END_OF_USE_HOLDER_DEAD: EndOfUse
END_OF_USE_KEY_LOST: EndOfUse
END_OF_USE_KEY_LEAKED: EndOfUse
END_OF_USE_FRAUDULENT: EndOfUse
VERDICT_UNSPECIFIED: Verdict
VERDICT_VALID: Verdict
VERDICT_NOT_YET_VALID: Verdict
VERDICT_EXPIRED: Verdict
VERDICT_REVOKED: Verdict
VERDICT_SUSPENDED: Verdict
VERDICT_UNTRUSTED: Verdict
VERDICT_UNKNOWN: Verdict
VERDICT_STATUS_UNAVAILABLE: Verdict

class CheckSecurityMeansRequest(_message.Message):
    __slots__ = ("otp_serial", "otp_code", "card_challenge_id", "card_answer")
    OTP_SERIAL_FIELD_NUMBER: _ClassVar[int]
    OTP_CODE_FIELD_NUMBER: _ClassVar[int]
    CARD_CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_ANSWER_FIELD_NUMBER: _ClassVar[int]
    otp_serial: str
    otp_code: str
    card_challenge_id: str
    card_answer: str
    def __init__(self, otp_serial: _Optional[str] = ..., otp_code: _Optional[str] = ..., card_challenge_id: _Optional[str] = ..., card_answer: _Optional[str] = ...) -> None: ...

class CheckSecurityMeansResponse(_message.Message):
    __slots__ = ("means",)
    MEANS_FIELD_NUMBER: _ClassVar[int]
    means: str
    def __init__(self, means: _Optional[str] = ...) -> None: ...

class AdditionalProof(_message.Message):
    __slots__ = ("kind", "value")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[AdditionalProof.Kind]
        BRANCH_NUMBER: _ClassVar[AdditionalProof.Kind]
        SMS: _ClassVar[AdditionalProof.Kind]
        ARS: _ClassVar[AdditionalProof.Kind]
    KIND_UNSPECIFIED: AdditionalProof.Kind
    BRANCH_NUMBER: AdditionalProof.Kind
    SMS: AdditionalProof.Kind
    ARS: AdditionalProof.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    kind: AdditionalProof.Kind
    value: str
    def __init__(self, kind: _Optional[_Union[AdditionalProof.Kind, str]] = ..., value: _Optional[str] = ...) -> None: ...

class OpenIssuanceRequest(_message.Message):
    __slots__ = ("customer_ref", "certificate_type", "subscriber_name", "reissue", "replaces_serial", "device_info", "proof", "operator")
    CUSTOMER_REF_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_TYPE_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBER_NAME_FIELD_NUMBER: _ClassVar[int]
    REISSUE_FIELD_NUMBER: _ClassVar[int]
    REPLACES_SERIAL_FIELD_NUMBER: _ClassVar[int]
    DEVICE_INFO_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    customer_ref: str
    certificate_type: str
    subscriber_name: str
    reissue: bool
    replaces_serial: str
    device_info: _policy_pb2.DeviceInfo
    proof: AdditionalProof
    operator: str
    def __init__(self, customer_ref: _Optional[str] = ..., certificate_type: _Optional[str] = ..., subscriber_name: _Optional[str] = ..., reissue: _Optional[bool] = ..., replaces_serial: _Optional[str] = ..., device_info: _Optional[_Union[_policy_pb2.DeviceInfo, _Mapping]] = ..., proof: _Optional[_Union[AdditionalProof, _Mapping]] = ..., operator: _Optional[str] = ...) -> None: ...

class IssuanceRequest(_message.Message):
    __slots__ = ("id", "customer_ref", "certificate_type", "reissue", "state", "step", "created_at", "expires_at", "storage", "certificate_serial", "reason", "fee_krw", "replaces_serial")
    ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_REF_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_TYPE_FIELD_NUMBER: _ClassVar[int]
    REISSUE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    STORAGE_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FEE_KRW_FIELD_NUMBER: _ClassVar[int]
    REPLACES_SERIAL_FIELD_NUMBER: _ClassVar[int]
    id: str
    customer_ref: str
    certificate_type: str
    reissue: bool
    state: IssuanceState
    step: IssuanceStep
    created_at: float
    expires_at: float
    storage: StorageLocation
    certificate_serial: str
    reason: str
    fee_krw: int
    replaces_serial: str
    def __init__(self, id: _Optional[str] = ..., customer_ref: _Optional[str] = ..., certificate_type: _Optional[str] = ..., reissue: _Optional[bool] = ..., state: _Optional[_Union[IssuanceState, str]] = ..., step: _Optional[_Union[IssuanceStep, str]] = ..., created_at: _Optional[float] = ..., expires_at: _Optional[float] = ..., storage: _Optional[_Union[StorageLocation, str]] = ..., certificate_serial: _Optional[str] = ..., reason: _Optional[str] = ..., fee_krw: _Optional[int] = ..., replaces_serial: _Optional[str] = ...) -> None: ...

class AdvanceIssuanceRequest(_message.Message):
    __slots__ = ("request_id", "step", "operator", "identity_document", "otp_serial", "otp_code", "card_challenge_id", "card_answer", "account")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    OTP_SERIAL_FIELD_NUMBER: _ClassVar[int]
    OTP_CODE_FIELD_NUMBER: _ClassVar[int]
    CARD_CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_ANSWER_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    step: IssuanceStep
    operator: str
    identity_document: str
    otp_serial: str
    otp_code: str
    card_challenge_id: str
    card_answer: str
    account: str
    def __init__(self, request_id: _Optional[str] = ..., step: _Optional[_Union[IssuanceStep, str]] = ..., operator: _Optional[str] = ..., identity_document: _Optional[str] = ..., otp_serial: _Optional[str] = ..., otp_code: _Optional[str] = ..., card_challenge_id: _Optional[str] = ..., card_answer: _Optional[str] = ..., account: _Optional[str] = ...) -> None: ...

class TokenStorage(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: str
    def __init__(self, session: _Optional[str] = ...) -> None: ...

class SmartcardStorage(_message.Message):
    __slots__ = ("reader", "pin")
    READER_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    reader: str
    pin: str
    def __init__(self, reader: _Optional[str] = ..., pin: _Optional[str] = ...) -> None: ...

class DiskStorage(_message.Message):
    __slots__ = ("disk", "password", "removable")
    DISK_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    REMOVABLE_FIELD_NUMBER: _ClassVar[int]
    disk: str
    password: str
    removable: bool
    def __init__(self, disk: _Optional[str] = ..., password: _Optional[str] = ..., removable: _Optional[bool] = ...) -> None: ...

class CompleteIssuanceRequest(_message.Message):
    __slots__ = ("request_id", "token", "smartcard", "disk")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    SMARTCARD_FIELD_NUMBER: _ClassVar[int]
    DISK_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    token: TokenStorage
    smartcard: SmartcardStorage
    disk: DiskStorage
    def __init__(self, request_id: _Optional[str] = ..., token: _Optional[_Union[TokenStorage, _Mapping]] = ..., smartcard: _Optional[_Union[SmartcardStorage, _Mapping]] = ..., disk: _Optional[_Union[DiskStorage, _Mapping]] = ...) -> None: ...

class CancelIssuanceRequest(_message.Message):
    __slots__ = ("request_id", "operator", "reason")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    operator: str
    reason: str
    def __init__(self, request_id: _Optional[str] = ..., operator: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class GetIssuanceRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class Certificate(_message.Message):
    __slots__ = ("serial", "issuer", "subject", "customer_ref", "certificate_type", "origin", "storage", "location", "not_before", "not_after", "status", "status_reason", "renewal", "renewable_from", "renewable_until", "fee_krw", "refund_krw", "replaced_by", "der", "request_id", "issued_at")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_REF_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_TYPE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    STORAGE_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    RENEWAL_FIELD_NUMBER: _ClassVar[int]
    RENEWABLE_FROM_FIELD_NUMBER: _ClassVar[int]
    RENEWABLE_UNTIL_FIELD_NUMBER: _ClassVar[int]
    FEE_KRW_FIELD_NUMBER: _ClassVar[int]
    REFUND_KRW_FIELD_NUMBER: _ClassVar[int]
    REPLACED_BY_FIELD_NUMBER: _ClassVar[int]
    DER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    serial: str
    issuer: str
    subject: str
    customer_ref: str
    certificate_type: str
    origin: str
    storage: StorageLocation
    location: str
    not_before: float
    not_after: float
    status: CertificateStatus
    status_reason: str
    renewal: RenewalState
    renewable_from: str
    renewable_until: str
    fee_krw: int
    refund_krw: int
    replaced_by: str
    der: bytes
    request_id: str
    issued_at: float
    def __init__(self, serial: _Optional[str] = ..., issuer: _Optional[str] = ..., subject: _Optional[str] = ..., customer_ref: _Optional[str] = ..., certificate_type: _Optional[str] = ..., origin: _Optional[str] = ..., storage: _Optional[_Union[StorageLocation, str]] = ..., location: _Optional[str] = ..., not_before: _Optional[float] = ..., not_after: _Optional[float] = ..., status: _Optional[_Union[CertificateStatus, str]] = ..., status_reason: _Optional[str] = ..., renewal: _Optional[_Union[RenewalState, str]] = ..., renewable_from: _Optional[str] = ..., renewable_until: _Optional[str] = ..., fee_krw: _Optional[int] = ..., refund_krw: _Optional[int] = ..., replaced_by: _Optional[str] = ..., der: _Optional[bytes] = ..., request_id: _Optional[str] = ..., issued_at: _Optional[float] = ...) -> None: ...

class RenewCertificateRequest(_message.Message):
    __slots__ = ("serial", "token", "smartcard", "disk")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    SMARTCARD_FIELD_NUMBER: _ClassVar[int]
    DISK_FIELD_NUMBER: _ClassVar[int]
    serial: str
    token: TokenStorage
    smartcard: SmartcardStorage
    disk: DiskStorage
    def __init__(self, serial: _Optional[str] = ..., token: _Optional[_Union[TokenStorage, _Mapping]] = ..., smartcard: _Optional[_Union[SmartcardStorage, _Mapping]] = ..., disk: _Optional[_Union[DiskStorage, _Mapping]] = ...) -> None: ...

class CancelCertificateRequest(_message.Message):
    __slots__ = ("serial", "operator")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    serial: str
    operator: str
    def __init__(self, serial: _Optional[str] = ..., operator: _Optional[str] = ...) -> None: ...

class CancelCertificateResponse(_message.Message):
    __slots__ = ("certificate", "fee_krw", "refund_krw")
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    FEE_KRW_FIELD_NUMBER: _ClassVar[int]
    REFUND_KRW_FIELD_NUMBER: _ClassVar[int]
    certificate: Certificate
    fee_krw: int
    refund_krw: int
    def __init__(self, certificate: _Optional[_Union[Certificate, _Mapping]] = ..., fee_krw: _Optional[int] = ..., refund_krw: _Optional[int] = ...) -> None: ...

class RevokeCertificateRequest(_message.Message):
    __slots__ = ("serial", "reason", "operator")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    serial: str
    reason: RevocationReason
    operator: str
    def __init__(self, serial: _Optional[str] = ..., reason: _Optional[_Union[RevocationReason, str]] = ..., operator: _Optional[str] = ...) -> None: ...

class SuspendCertificateRequest(_message.Message):
    __slots__ = ("serial", "operator", "reason")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    serial: str
    operator: str
    reason: str
    def __init__(self, serial: _Optional[str] = ..., operator: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RestoreCertificateRequest(_message.Message):
    __slots__ = ("serial", "operator")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    serial: str
    operator: str
    def __init__(self, serial: _Optional[str] = ..., operator: _Optional[str] = ...) -> None: ...

class UpdateSubscriberRequest(_message.Message):
    __slots__ = ("serial", "changes", "operator")
    class ChangesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    serial: str
    changes: _containers.ScalarMap[str, str]
    operator: str
    def __init__(self, serial: _Optional[str] = ..., changes: _Optional[_Mapping[str, str]] = ..., operator: _Optional[str] = ...) -> None: ...

class EndCertificateUseRequest(_message.Message):
    __slots__ = ("serial", "cause", "operator")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    serial: str
    cause: EndOfUse
    operator: str
    def __init__(self, serial: _Optional[str] = ..., cause: _Optional[_Union[EndOfUse, str]] = ..., operator: _Optional[str] = ...) -> None: ...

class RegisterExternalCertificateRequest(_message.Message):
    __slots__ = ("customer_ref", "certificate", "storage", "proof", "operator")
    CUSTOMER_REF_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    STORAGE_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    customer_ref: str
    certificate: bytes
    storage: StorageLocation
    proof: AdditionalProof
    operator: str
    def __init__(self, customer_ref: _Optional[str] = ..., certificate: _Optional[bytes] = ..., storage: _Optional[_Union[StorageLocation, str]] = ..., proof: _Optional[_Union[AdditionalProof, _Mapping]] = ..., operator: _Optional[str] = ...) -> None: ...

class IssueOneTimeNumberRequest(_message.Message):
    __slots__ = ("customer_ref", "operator")
    CUSTOMER_REF_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    customer_ref: str
    operator: str
    def __init__(self, customer_ref: _Optional[str] = ..., operator: _Optional[str] = ...) -> None: ...

class IssueOneTimeNumberResponse(_message.Message):
    __slots__ = ("number", "expires_at")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    number: str
    expires_at: float
    def __init__(self, number: _Optional[str] = ..., expires_at: _Optional[float] = ...) -> None: ...

class GetCertificateRequest(_message.Message):
    __slots__ = ("serial",)
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    serial: str
    def __init__(self, serial: _Optional[str] = ...) -> None: ...

class ListCustomerCertificatesRequest(_message.Message):
    __slots__ = ("customer_ref",)
    CUSTOMER_REF_FIELD_NUMBER: _ClassVar[int]
    customer_ref: str
    def __init__(self, customer_ref: _Optional[str] = ...) -> None: ...

class ListExpiringCertificatesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCertificatesResponse(_message.Message):
    __slots__ = ("certificates",)
    CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    certificates: _containers.RepeatedCompositeFieldContainer[Certificate]
    def __init__(self, certificates: _Optional[_Iterable[_Union[Certificate, _Mapping]]] = ...) -> None: ...

class CheckCertificateRequest(_message.Message):
    __slots__ = ("certificate",)
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    certificate: bytes
    def __init__(self, certificate: _Optional[bytes] = ...) -> None: ...

class CertificateCheck(_message.Message):
    __slots__ = ("verdict", "allowed", "message", "source", "this_update", "next_update", "revoked_at", "revocation_reason", "failed_open")
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    THIS_UPDATE_FIELD_NUMBER: _ClassVar[int]
    NEXT_UPDATE_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOCATION_REASON_FIELD_NUMBER: _ClassVar[int]
    FAILED_OPEN_FIELD_NUMBER: _ClassVar[int]
    verdict: Verdict
    allowed: bool
    message: str
    source: str
    this_update: float
    next_update: float
    revoked_at: float
    revocation_reason: str
    failed_open: bool
    def __init__(self, verdict: _Optional[_Union[Verdict, str]] = ..., allowed: _Optional[bool] = ..., message: _Optional[str] = ..., source: _Optional[str] = ..., this_update: _Optional[float] = ..., next_update: _Optional[float] = ..., revoked_at: _Optional[float] = ..., revocation_reason: _Optional[str] = ..., failed_open: _Optional[bool] = ...) -> None: ...

class VerifyCertificateSignatureRequest(_message.Message):
    __slots__ = ("certificate", "signature", "data", "digest")
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    certificate: bytes
    signature: bytes
    data: bytes
    digest: bytes
    def __init__(self, certificate: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., data: _Optional[bytes] = ..., digest: _Optional[bytes] = ...) -> None: ...

class VerifyCertificateSignatureResponse(_message.Message):
    __slots__ = ("accepted", "signature_valid", "check")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_VALID_FIELD_NUMBER: _ClassVar[int]
    CHECK_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    signature_valid: bool
    check: CertificateCheck
    def __init__(self, accepted: _Optional[bool] = ..., signature_valid: _Optional[bool] = ..., check: _Optional[_Union[CertificateCheck, _Mapping]] = ...) -> None: ...
