"""Rows of smartcards: their registrations at branches, kept at the center
(authd/customer/registrations.py). A card is named by the GUID of its CHUID, in hex."""

from __future__ import annotations

from authd.customer.models import MediumKind
from authd.customer.repository import BranchRegistrationRows

REGISTRATIONS = BranchRegistrationRows(MediumKind.SMARTCARD, "smartcard_registrations",
                                       "card_serial")
