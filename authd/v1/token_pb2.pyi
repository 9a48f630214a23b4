from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TokenKeySpec(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOKEN_KEY_SPEC_UNSPECIFIED: _ClassVar[TokenKeySpec]
    TOKEN_KEY_SPEC_EC_P256: _ClassVar[TokenKeySpec]
    TOKEN_KEY_SPEC_EC_P384: _ClassVar[TokenKeySpec]
    TOKEN_KEY_SPEC_RSA_2048: _ClassVar[TokenKeySpec]
    TOKEN_KEY_SPEC_RSA_3072: _ClassVar[TokenKeySpec]

class TokenSignAlgorithm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOKEN_SIGN_ALGORITHM_UNSPECIFIED: _ClassVar[TokenSignAlgorithm]
    TOKEN_SIGN_ECDSA_SHA256: _ClassVar[TokenSignAlgorithm]
    TOKEN_SIGN_RSA_PKCS1V15_SHA256: _ClassVar[TokenSignAlgorithm]
    TOKEN_SIGN_RSA_PSS_SHA256: _ClassVar[TokenSignAlgorithm]

class TokenRenewalState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOKEN_RENEWAL_UNSPECIFIED: _ClassVar[TokenRenewalState]
    TOKEN_RENEWAL_NOT_YET_VALID: _ClassVar[TokenRenewalState]
    TOKEN_RENEWAL_VALID: _ClassVar[TokenRenewalState]
    TOKEN_RENEWAL_RENEWABLE: _ClassVar[TokenRenewalState]
    TOKEN_RENEWAL_EXPIRED: _ClassVar[TokenRenewalState]
TOKEN_KEY_SPEC_UNSPECIFIED: TokenKeySpec
TOKEN_KEY_SPEC_EC_P256: TokenKeySpec
TOKEN_KEY_SPEC_EC_P384: TokenKeySpec
TOKEN_KEY_SPEC_RSA_2048: TokenKeySpec
TOKEN_KEY_SPEC_RSA_3072: TokenKeySpec
TOKEN_SIGN_ALGORITHM_UNSPECIFIED: TokenSignAlgorithm
TOKEN_SIGN_ECDSA_SHA256: TokenSignAlgorithm
TOKEN_SIGN_RSA_PKCS1V15_SHA256: TokenSignAlgorithm
TOKEN_SIGN_RSA_PSS_SHA256: TokenSignAlgorithm
TOKEN_RENEWAL_UNSPECIFIED: TokenRenewalState
TOKEN_RENEWAL_NOT_YET_VALID: TokenRenewalState
TOKEN_RENEWAL_VALID: TokenRenewalState
TOKEN_RENEWAL_RENEWABLE: TokenRenewalState
TOKEN_RENEWAL_EXPIRED: TokenRenewalState

class TokenPinState(_message.Message):
    __slots__ = ("count_low", "final_try", "locked", "to_be_changed", "attempts_left")
    COUNT_LOW_FIELD_NUMBER: _ClassVar[int]
    FINAL_TRY_FIELD_NUMBER: _ClassVar[int]
    LOCKED_FIELD_NUMBER: _ClassVar[int]
    TO_BE_CHANGED_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_LEFT_FIELD_NUMBER: _ClassVar[int]
    count_low: bool
    final_try: bool
    locked: bool
    to_be_changed: bool
    attempts_left: int
    def __init__(self, count_low: _Optional[bool] = ..., final_try: _Optional[bool] = ..., locked: _Optional[bool] = ..., to_be_changed: _Optional[bool] = ..., attempts_left: _Optional[int] = ...) -> None: ...

class SecurityToken(_message.Message):
    __slots__ = ("serial", "label", "manufacturer", "model", "module", "slot_id", "flags", "pin_state", "logged_in")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    MANUFACTURER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    SLOT_ID_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    PIN_STATE_FIELD_NUMBER: _ClassVar[int]
    LOGGED_IN_FIELD_NUMBER: _ClassVar[int]
    serial: str
    label: str
    manufacturer: str
    model: str
    module: str
    slot_id: int
    flags: int
    pin_state: TokenPinState
    logged_in: bool
    def __init__(self, serial: _Optional[str] = ..., label: _Optional[str] = ..., manufacturer: _Optional[str] = ..., model: _Optional[str] = ..., module: _Optional[str] = ..., slot_id: _Optional[int] = ..., flags: _Optional[int] = ..., pin_state: _Optional[_Union[TokenPinState, _Mapping]] = ..., logged_in: _Optional[bool] = ...) -> None: ...

class ListTokensRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListTokensResponse(_message.Message):
    __slots__ = ("tokens",)
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    tokens: _containers.RepeatedCompositeFieldContainer[SecurityToken]
    def __init__(self, tokens: _Optional[_Iterable[_Union[SecurityToken, _Mapping]]] = ...) -> None: ...

class WatchTokensRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TokenEvent(_message.Message):
    __slots__ = ("kind", "token")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[TokenEvent.Kind]
        PRESENT: _ClassVar[TokenEvent.Kind]
        INSERTED: _ClassVar[TokenEvent.Kind]
        REMOVED: _ClassVar[TokenEvent.Kind]
    KIND_UNSPECIFIED: TokenEvent.Kind
    PRESENT: TokenEvent.Kind
    INSERTED: TokenEvent.Kind
    REMOVED: TokenEvent.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    kind: TokenEvent.Kind
    token: SecurityToken
    def __init__(self, kind: _Optional[_Union[TokenEvent.Kind, str]] = ..., token: _Optional[_Union[SecurityToken, _Mapping]] = ...) -> None: ...

class TokenLoginRequest(_message.Message):
    __slots__ = ("token_serial", "pin")
    TOKEN_SERIAL_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    token_serial: str
    pin: str
    def __init__(self, token_serial: _Optional[str] = ..., pin: _Optional[str] = ...) -> None: ...

class TokenLoginResponse(_message.Message):
    __slots__ = ("session", "expires_at", "idle_timeout_seconds", "token")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    IDLE_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    session: str
    expires_at: float
    idle_timeout_seconds: int
    token: SecurityToken
    def __init__(self, session: _Optional[str] = ..., expires_at: _Optional[float] = ..., idle_timeout_seconds: _Optional[int] = ..., token: _Optional[_Union[SecurityToken, _Mapping]] = ...) -> None: ...

class TokenLogoutRequest(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: str
    def __init__(self, session: _Optional[str] = ...) -> None: ...

class TokenLogoutResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TokenUnblockPinRequest(_message.Message):
    __slots__ = ("token_serial", "so_pin", "new_pin", "operator", "reason")
    TOKEN_SERIAL_FIELD_NUMBER: _ClassVar[int]
    SO_PIN_FIELD_NUMBER: _ClassVar[int]
    NEW_PIN_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    token_serial: str
    so_pin: str
    new_pin: str
    operator: str
    reason: str
    def __init__(self, token_serial: _Optional[str] = ..., so_pin: _Optional[str] = ..., new_pin: _Optional[str] = ..., operator: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class TokenUnblockPinResponse(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: SecurityToken
    def __init__(self, token: _Optional[_Union[SecurityToken, _Mapping]] = ...) -> None: ...

class TokenGenerateKeyPairRequest(_message.Message):
    __slots__ = ("session", "spec", "label", "key_id")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    session: str
    spec: TokenKeySpec
    label: str
    key_id: bytes
    def __init__(self, session: _Optional[str] = ..., spec: _Optional[_Union[TokenKeySpec, str]] = ..., label: _Optional[str] = ..., key_id: _Optional[bytes] = ...) -> None: ...

class TokenKeyInfo(_message.Message):
    __slots__ = ("key_id", "label", "spec", "public_key_der", "has_private_key", "has_certificate", "extractable")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_DER_FIELD_NUMBER: _ClassVar[int]
    HAS_PRIVATE_KEY_FIELD_NUMBER: _ClassVar[int]
    HAS_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    EXTRACTABLE_FIELD_NUMBER: _ClassVar[int]
    key_id: bytes
    label: str
    spec: TokenKeySpec
    public_key_der: bytes
    has_private_key: bool
    has_certificate: bool
    extractable: bool
    def __init__(self, key_id: _Optional[bytes] = ..., label: _Optional[str] = ..., spec: _Optional[_Union[TokenKeySpec, str]] = ..., public_key_der: _Optional[bytes] = ..., has_private_key: _Optional[bool] = ..., has_certificate: _Optional[bool] = ..., extractable: _Optional[bool] = ...) -> None: ...

class TokenCreateCsrRequest(_message.Message):
    __slots__ = ("session", "key_id", "subject", "rsa_pss")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    RSA_PSS_FIELD_NUMBER: _ClassVar[int]
    session: str
    key_id: bytes
    subject: str
    rsa_pss: bool
    def __init__(self, session: _Optional[str] = ..., key_id: _Optional[bytes] = ..., subject: _Optional[str] = ..., rsa_pss: _Optional[bool] = ...) -> None: ...

class TokenCreateCsrResponse(_message.Message):
    __slots__ = ("csr_der", "csr_pem")
    CSR_DER_FIELD_NUMBER: _ClassVar[int]
    CSR_PEM_FIELD_NUMBER: _ClassVar[int]
    csr_der: bytes
    csr_pem: str
    def __init__(self, csr_der: _Optional[bytes] = ..., csr_pem: _Optional[str] = ...) -> None: ...

class TokenImportCertificateRequest(_message.Message):
    __slots__ = ("session", "certificate", "label", "replace")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    session: str
    certificate: bytes
    label: str
    replace: bool
    def __init__(self, session: _Optional[str] = ..., certificate: _Optional[bytes] = ..., label: _Optional[str] = ..., replace: _Optional[bool] = ...) -> None: ...

class TokenCertificateInfo(_message.Message):
    __slots__ = ("key_id", "label", "subject", "issuer", "serial_hex", "not_before", "not_after", "renewal", "renewable_from", "renewable_until", "der")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    SERIAL_HEX_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    RENEWAL_FIELD_NUMBER: _ClassVar[int]
    RENEWABLE_FROM_FIELD_NUMBER: _ClassVar[int]
    RENEWABLE_UNTIL_FIELD_NUMBER: _ClassVar[int]
    DER_FIELD_NUMBER: _ClassVar[int]
    key_id: bytes
    label: str
    subject: str
    issuer: str
    serial_hex: str
    not_before: float
    not_after: float
    renewal: TokenRenewalState
    renewable_from: str
    renewable_until: str
    der: bytes
    def __init__(self, key_id: _Optional[bytes] = ..., label: _Optional[str] = ..., subject: _Optional[str] = ..., issuer: _Optional[str] = ..., serial_hex: _Optional[str] = ..., not_before: _Optional[float] = ..., not_after: _Optional[float] = ..., renewal: _Optional[_Union[TokenRenewalState, str]] = ..., renewable_from: _Optional[str] = ..., renewable_until: _Optional[str] = ..., der: _Optional[bytes] = ...) -> None: ...

class TokenListObjectsRequest(_message.Message):
    __slots__ = ("session", "token_serial")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    TOKEN_SERIAL_FIELD_NUMBER: _ClassVar[int]
    session: str
    token_serial: str
    def __init__(self, session: _Optional[str] = ..., token_serial: _Optional[str] = ...) -> None: ...

class TokenListObjectsResponse(_message.Message):
    __slots__ = ("keys", "certificates")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[TokenKeyInfo]
    certificates: _containers.RepeatedCompositeFieldContainer[TokenCertificateInfo]
    def __init__(self, keys: _Optional[_Iterable[_Union[TokenKeyInfo, _Mapping]]] = ..., certificates: _Optional[_Iterable[_Union[TokenCertificateInfo, _Mapping]]] = ...) -> None: ...

class TokenSignRequest(_message.Message):
    __slots__ = ("session", "key_id", "algorithm", "data", "digest", "token_hashes")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    TOKEN_HASHES_FIELD_NUMBER: _ClassVar[int]
    session: str
    key_id: bytes
    algorithm: TokenSignAlgorithm
    data: bytes
    digest: bytes
    token_hashes: bool
    def __init__(self, session: _Optional[str] = ..., key_id: _Optional[bytes] = ..., algorithm: _Optional[_Union[TokenSignAlgorithm, str]] = ..., data: _Optional[bytes] = ..., digest: _Optional[bytes] = ..., token_hashes: _Optional[bool] = ...) -> None: ...

class TokenSignResponse(_message.Message):
    __slots__ = ("signature", "algorithm")
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    signature: bytes
    algorithm: TokenSignAlgorithm
    def __init__(self, signature: _Optional[bytes] = ..., algorithm: _Optional[_Union[TokenSignAlgorithm, str]] = ...) -> None: ...

class TokenVerifyRequest(_message.Message):
    __slots__ = ("session", "token_serial", "key_id", "algorithm", "data", "digest", "signature")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    TOKEN_SERIAL_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    session: str
    token_serial: str
    key_id: bytes
    algorithm: TokenSignAlgorithm
    data: bytes
    digest: bytes
    signature: bytes
    def __init__(self, session: _Optional[str] = ..., token_serial: _Optional[str] = ..., key_id: _Optional[bytes] = ..., algorithm: _Optional[_Union[TokenSignAlgorithm, str]] = ..., data: _Optional[bytes] = ..., digest: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class TokenVerifyResponse(_message.Message):
    __slots__ = ("valid",)
    VALID_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    def __init__(self, valid: _Optional[bool] = ...) -> None: ...

class TokenDeleteObjectRequest(_message.Message):
    __slots__ = ("session", "key_id", "scope")
    class Scope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SCOPE_UNSPECIFIED: _ClassVar[TokenDeleteObjectRequest.Scope]
        KEY_PAIR: _ClassVar[TokenDeleteObjectRequest.Scope]
        CERTIFICATE: _ClassVar[TokenDeleteObjectRequest.Scope]
    SCOPE_UNSPECIFIED: TokenDeleteObjectRequest.Scope
    KEY_PAIR: TokenDeleteObjectRequest.Scope
    CERTIFICATE: TokenDeleteObjectRequest.Scope
    SESSION_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    session: str
    key_id: bytes
    scope: TokenDeleteObjectRequest.Scope
    def __init__(self, session: _Optional[str] = ..., key_id: _Optional[bytes] = ..., scope: _Optional[_Union[TokenDeleteObjectRequest.Scope, str]] = ...) -> None: ...

class TokenDeleteObjectResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    def __init__(self, deleted: _Optional[int] = ...) -> None: ...

class RegisterTokenRequest(_message.Message):
    __slots__ = ("session", "customer_id", "operator", "terminal", "key_id")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    session: str
    customer_id: str
    operator: str
    terminal: str
    key_id: bytes
    def __init__(self, session: _Optional[str] = ..., customer_id: _Optional[str] = ..., operator: _Optional[str] = ..., terminal: _Optional[str] = ..., key_id: _Optional[bytes] = ...) -> None: ...

class TokenRegistration(_message.Message):
    __slots__ = ("id", "institution", "token_serial", "customer_id", "terminal", "operator", "registered_at", "deregistered_at", "active", "public_key")
    ID_FIELD_NUMBER: _ClassVar[int]
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    TOKEN_SERIAL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    DEREGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    id: str
    institution: str
    token_serial: str
    customer_id: str
    terminal: str
    operator: str
    registered_at: float
    deregistered_at: float
    active: bool
    public_key: bytes
    def __init__(self, id: _Optional[str] = ..., institution: _Optional[str] = ..., token_serial: _Optional[str] = ..., customer_id: _Optional[str] = ..., terminal: _Optional[str] = ..., operator: _Optional[str] = ..., registered_at: _Optional[float] = ..., deregistered_at: _Optional[float] = ..., active: _Optional[bool] = ..., public_key: _Optional[bytes] = ...) -> None: ...

class DeregisterTokenRequest(_message.Message):
    __slots__ = ("token_serial", "customer_id", "operator", "reason")
    TOKEN_SERIAL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    token_serial: str
    customer_id: str
    operator: str
    reason: str
    def __init__(self, token_serial: _Optional[str] = ..., customer_id: _Optional[str] = ..., operator: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class DeregisterTokenResponse(_message.Message):
    __slots__ = ("registration",)
    REGISTRATION_FIELD_NUMBER: _ClassVar[int]
    registration: TokenRegistration
    def __init__(self, registration: _Optional[_Union[TokenRegistration, _Mapping]] = ...) -> None: ...

class CheckTokenExemptionRequest(_message.Message):
    __slots__ = ("token_serial", "customer_id")
    TOKEN_SERIAL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    token_serial: str
    customer_id: str
    def __init__(self, token_serial: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class CheckTokenExemptionResponse(_message.Message):
    __slots__ = ("exempt", "reason", "registration")
    EXEMPT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REGISTRATION_FIELD_NUMBER: _ClassVar[int]
    exempt: bool
    reason: str
    registration: TokenRegistration
    def __init__(self, exempt: _Optional[bool] = ..., reason: _Optional[str] = ..., registration: _Optional[_Union[TokenRegistration, _Mapping]] = ...) -> None: ...
