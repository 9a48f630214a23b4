"""A virtual blind cardholder reading embossed braille security cards."""

from __future__ import annotations

from simulators.security_card.cardholder.cardholder import (
    Question,
    ReadCard,
    VirtualCardholder,
    read_card,
)

__all__ = ["Question", "ReadCard", "VirtualCardholder", "read_card"]
