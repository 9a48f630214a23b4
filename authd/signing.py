"""What a signature with a customer's key must pass before a device makes it.

The token and smartcard features sign; the certificate feature (built after them) installs a
:class:`SignatureGuard` that checks the key's certificate (validity, chain, revocation) and
raises when the signature must not be made (EFT art. 14(2)1). Without a guard, devices sign
as before.
"""

from __future__ import annotations

from typing import Protocol


class SignatureGuard(Protocol):
    def check(self, certificate_der: bytes | None, *, medium: str, device: str) -> None:
        """Raise (WrongState, Unreachable) when the key with this certificate (None: the key
        has no certificate next to it) must not sign now."""

    def fresh(self, certificate_der: bytes) -> bool:
        """Whether :meth:`check` would answer from memory, without asking a responder (a
        caller on an event loop signs inline only then)."""
