"""A PC/SC context that re-establishes itself when pcscd goes away and comes back."""

from __future__ import annotations

import threading

from smartcard import scard

from drivers.pcsc.errors import error_for, is_service_down

PNP_NOTIFICATION = "\\\\?PnP?\\Notification"


class PcscContext:
    """Owns one SCARDCONTEXT; `handle()` (re)establishes it on demand."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handle: int | None = None

    def handle(self) -> int:
        with self._lock:
            if self._handle is None:
                hresult, handle = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
                if hresult != scard.SCARD_S_SUCCESS:
                    raise error_for(hresult, "connecting to the PC/SC service")
                self._handle = handle
            return self._handle

    def invalidate(self) -> None:
        """Drop the context (after pcscd went away); the next `handle()` makes a new one."""
        with self._lock:
            handle, self._handle = self._handle, None
        if handle is not None:
            scard.SCardReleaseContext(handle)

    def cancel(self) -> None:
        """Wake a thread blocked in SCardGetStatusChange on this context."""
        with self._lock:
            handle = self._handle
        if handle is not None:
            scard.SCardCancel(handle)

    def check(self, hresult: int, what: str, reader: str | None = None) -> None:
        """Raise the mapped error for a failed call, dropping the context if pcscd is gone."""
        if hresult == scard.SCARD_S_SUCCESS:
            return
        if is_service_down(hresult):
            self.invalidate()
        raise error_for(hresult, what, reader)

    def close(self) -> None:
        self.invalidate()


def list_readers(context: PcscContext | None = None) -> list[str]:
    """Names of the attached readers; [] when pcscd runs but no reader is attached."""
    ctx = context or PcscContext()
    try:
        hresult, readers = scard.SCardListReaders(ctx.handle(), [])
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        ctx.check(hresult, "listing readers")
        return list(readers)
    finally:
        if context is None:
            ctx.close()
