"""An exclusive connection to the card in one reader: bytes in, (data, sw) out."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Self

from smartcard import scard

from drivers.pcsc.context import PcscContext
from drivers.pcsc.errors import CardAbsent, error_for, is_service_down

_PROTOCOLS = scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
_STATUS_PRESENT = 0x0004  # SCARD_PRESENT in SCardStatus's state (pcsclite.h)


class PcscConnection:
    """`send_and_receive(apdu) -> (data, sw)` over PC/SC; the seam the device code uses.

    The card is held exclusively from `open` until `close`. Errors are the project's driver
    errors: `CardAbsent` when the card was pulled, `PcscServiceUnavailable` when pcscd went
    away, `ReaderBusy` when another application holds the card.
    """

    def __init__(
        self, reader: str, *, exclusive: bool = True, context: PcscContext | None = None
    ) -> None:
        self.reader = reader
        self._own_context = context is None
        self._context = context or PcscContext()
        self._lock = threading.Lock()
        self._card: int | None = None
        self._pci = scard.SCARD_PCI_T1
        self.atr = b""
        try:
            self._connect(exclusive)
        except BaseException:
            if self._own_context:
                self._context.close()
            raise

    def _connect(self, exclusive: bool) -> None:
        share = scard.SCARD_SHARE_EXCLUSIVE if exclusive else scard.SCARD_SHARE_SHARED
        hresult, card, protocol = scard.SCardConnect(
            self._context.handle(), self.reader, share, _PROTOCOLS
        )
        self._context.check(hresult, "connecting to the card", self.reader)
        self._card = card
        self._pci = (
            scard.SCARD_PCI_T0 if protocol == scard.SCARD_PROTOCOL_T0 else scard.SCARD_PCI_T1
        )
        hresult, _reader, _state, _protocol, atr = scard.SCardStatus(card)
        self._context.check(hresult, "reading the card status", self.reader)
        self.atr = bytes(atr)

    @property
    def closed(self) -> bool:
        return self._card is None

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        with self._lock:
            card = self._card
            if card is None:
                raise CardAbsent(f"the connection to reader {self.reader!r} is closed")
            hresult, response = scard.SCardTransmit(card, self._pci, list(apdu))
            if hresult != scard.SCARD_S_SUCCESS:
                self._drop(hresult)
                raise error_for(hresult, "sending a command to the card", self.reader)
            if len(response) < 2:  # a present card always ends with a status word
                self._drop(scard.SCARD_W_REMOVED_CARD)
                raise CardAbsent(
                    f"the card in reader {self.reader!r} stopped answering (was it removed?)"
                )
        return bytes(response[:-2]), (response[-2] << 8) | response[-1]

    def _drop(self, hresult: int) -> None:
        """After a failed transmit the handle is useless; release it (lock held)."""
        card, self._card = self._card, None
        if card is not None and not is_service_down(hresult):
            scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
        if is_service_down(hresult):
            self._context.invalidate()

    def close(self, *, reset: bool = False) -> None:
        with self._lock:
            card, self._card = self._card, None
        if card is not None:
            if reset and not self._card_present(card):
                reset = False  # nothing to reset; resetting a pulled card upsets some readers
            scard.SCardDisconnect(card, scard.SCARD_RESET_CARD if reset else scard.SCARD_LEAVE_CARD)
        if self._own_context:
            self._context.close()

    @staticmethod
    def _card_present(card: int) -> bool:
        hresult, _reader, state, _protocol, _atr = scard.SCardStatus(card)
        return bool(hresult == scard.SCARD_S_SUCCESS and state & _STATUS_PRESENT)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
