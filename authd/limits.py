"""How large a request each method accepts, checked before the request is parsed.

gRPC's own receive limit (``grpc.max_receive_message_length``) is one number for the whole
server; it is set to the largest request a method this node serves can legitimately carry, so a
center node (OTP, security cards) refuses anything above 16 KiB at the transport, and a branch
node with the token and smartcard services about 1 MiB. Each method then has its own limit,
checked on the raw bytes before they are parsed (``authd/interceptors.py``): RESOURCE_EXHAUSTED,
the same code gRPC answers above its own limit.

- every method not listed: 16 KiB (identifiers, codes, short texts and small seeds);
- ``TokenService/Sign``, ``SignStream`` (each message) and ``Verify``: ``[token]
  max_sign_bytes`` + 4 KiB (the data authd hashes, with the other fields);
- ``TokenService/ImportCertificate``, ``SmartcardService/ImportCertificate``: 64 KiB (one
  certificate, DER or PEM);
- ``SmartcardService/Sign``: 1 MiB + 4 KiB (the service hashes at most 1 MiB itself);
- ``SmartcardService/Transmit``, ``TransmitStream`` (each message): ``[smartcard] max_batch``
  x (``max_apdu_bytes`` + 8) + 4 KiB (a batch of command APDUs).
"""

from __future__ import annotations

from collections.abc import Iterable

from authd.config import Config
from authd.smartcard.settings import SmartcardSettings
from authd.token.settings import TokenSettings

KIB = 1024
DEFAULT = 16 * KIB
CERTIFICATE = 64 * KIB
ENVELOPE = 4 * KIB  # the other fields of a request around its one large field
SMARTCARD_MESSAGE = 1 << 20  # what SmartcardService/Sign hashes itself at most


def method_limits(config: Config) -> dict[str, int]:
    """Request size limits (bytes) of the methods that take more than :data:`DEFAULT`."""
    token = config.settings(TokenSettings)
    card = config.settings(SmartcardSettings)
    sign = token.max_sign_bytes + ENVELOPE
    apdus = card.max_batch * (card.max_apdu_bytes + 8) + ENVELOPE
    return {
        "/authd.v1.TokenService/Sign": sign,
        "/authd.v1.TokenService/SignStream": sign,
        "/authd.v1.TokenService/Verify": sign,
        "/authd.v1.TokenService/ImportCertificate": CERTIFICATE,
        "/authd.v1.SmartcardService/Sign": SMARTCARD_MESSAGE + ENVELOPE,
        "/authd.v1.SmartcardService/ImportCertificate": CERTIFICATE,
        "/authd.v1.SmartcardService/Transmit": apdus,
        "/authd.v1.SmartcardService/TransmitStream": apdus,
    }


class RequestLimits:
    """The limit of each method of the services a node serves, and the largest of them."""

    def __init__(self, config: Config, services: Iterable[str]) -> None:
        served = set(services)
        self._limits = {method: size for method, size in method_limits(config).items()
                        if method.split("/")[1] in served}
        self.largest = max([DEFAULT, *self._limits.values()])

    def of(self, method: str) -> int:
        return self._limits.get(method, DEFAULT)
