"""A virtual PIV card (NIST SP 800-73-4) that plugs into pcscd through vpcd."""

from __future__ import annotations

from simulators.smartcard.card import PIV_AID, PivCard, load_card
from simulators.smartcard.pcscd import PcscdError, PrivatePcscd
from simulators.smartcard.state import (
    DEFAULT_MANAGEMENT_KEY,
    DEFAULT_PIN,
    DEFAULT_PUK,
    CardState,
)
from simulators.smartcard.vpcd import ReaderOccupied, VirtualCardSlot, open_slot

__all__ = [
    "DEFAULT_MANAGEMENT_KEY",
    "DEFAULT_PIN",
    "DEFAULT_PUK",
    "PIV_AID",
    "CardState",
    "PcscdError",
    "PivCard",
    "PrivatePcscd",
    "ReaderOccupied",
    "VirtualCardSlot",
    "load_card",
    "open_slot",
]
