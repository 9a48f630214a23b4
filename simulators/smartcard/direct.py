"""A connection straight to an in-process virtual card (no pcscd): the driver seam."""

from __future__ import annotations

from simulators.smartcard.card import PivCard


class DirectConnection:
    """`send_and_receive(apdu) -> (data, sw)` answered by a `PivCard` in this process."""

    def __init__(self, card: PivCard) -> None:
        self.card = card
        self.sent: list[bytes] = []

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        self.sent.append(apdu)
        response = self.card.process(apdu)
        return response[:-2], int.from_bytes(response[-2:], "big")
