"""HSM security tokens (보안토큰): keys, certificates and signatures on the token."""

from devices.token.certificates import (
    CertificateInfo,
    RenewalState,
    certificate_info,
    renewal_state,
)
from devices.token.keys import KeyInfo, KeySpec
from devices.token.session import TokenSession
from devices.token.signing import SignAlgorithm
from devices.token.token import TokenDevice

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
