"""HSM security tokens (보안토큰): keys, certificates and signatures on the token."""

from devices.tokens.certificates import (
    CertificateInfo,
    RenewalState,
    certificate_info,
    renewal_state,
)
from devices.tokens.keys import KeyInfo, KeySpec
from devices.tokens.session import TokenSession
from devices.tokens.signing import SignAlgorithm
from devices.tokens.token import TokenDevice

__all__ = [
    "CertificateInfo",
    "KeyInfo",
    "KeySpec",
    "RenewalState",
    "SignAlgorithm",
    "TokenDevice",
    "TokenSession",
    "certificate_info",
    "renewal_state",
]
