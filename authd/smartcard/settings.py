"""The ``[smartcard]`` section: PC/SC readers, APDU limits and the PIV management key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from authd.settings import setting
from devices.smartcard.piv import DEFAULT_MANAGEMENT_KEY


@dataclass(frozen=True)
class SmartcardSettings:
    SECTION: ClassVar[str] = "smartcard"
    enabled: bool = setting(True, "serve smartcards (needs pcscd and pyscard on this host)")
    max_apdu_bytes: int = setting(4096, "largest command APDU a caller may send")
    max_batch: int = setting(256, "APDUs in one TransmitBatch call at most")
    idle_release_seconds: float = setting(2.0, "a card connection nobody used for this long is "
                                               "released to other applications")
    inline_transmit_us: int = setting(
        500, "behind the native front end, a Transmit that comes alone to an idle reader and "
             "whose APDUs should take less than this (µs, at the reader's recent time per "
             "APDU) is sent at once on the call link's thread instead of the reader's (0: never)")
    lend_after_calls: int = setting(
        4, "behind the native front end, after this many Transmits in a row from one caller "
           "on one reader (each alone and sent at once), the card is lent to the front end, "
           "which sends that caller's next Transmits there to pcscd itself (0: never)")
    poll_ms: int = setting(1000, "reader and card event polling interval in milliseconds")
    management_key: bytes = setting(DEFAULT_MANAGEMENT_KEY,
                                    "PIV management key (hex) for key generation and "
                                    "certificate import")

    def problems(self) -> list[str]:
        out = []
        if not 4 <= self.max_apdu_bytes <= 65544 or not 1 <= self.max_batch <= 4096:
            out.append("max_apdu_bytes must be 4..65544 and max_batch 1..4096")
        if self.idle_release_seconds <= 0 or not 10 <= self.poll_ms <= 60_000:
            out.append("idle_release_seconds must be positive and poll_ms 10..60000")
        if not 0 <= self.inline_transmit_us <= 100_000:
            out.append("inline_transmit_us must be 0..100000")
        if not 0 <= self.lend_after_calls <= 1_000_000:
            out.append("lend_after_calls must be 0..1000000")
        if len(self.management_key) not in (16, 24, 32):
            out.append("management_key must be 16, 24 or 32 bytes (hex)")
        return out


SETTINGS = SmartcardSettings
