"""PC/SC result codes turned into the project's driver errors (one chokepoint)."""

from __future__ import annotations

from smartcard import scard

from drivers.errors import DeviceAbsent, DeviceIOError, DeviceTimeout, DriverError


class PcscServiceUnavailable(DeviceAbsent):
    """pcscd is not running or went away."""


class ReaderNotFound(DeviceAbsent):
    """The named reader is not attached."""


class CardAbsent(DeviceAbsent):
    """No card in the reader, or the card was pulled."""


class ReaderBusy(DeviceIOError):
    """Another application holds the card exclusively."""


class CardResetError(DeviceIOError):
    """The card was reset by another application; the session state is lost."""


_SERVICE_DOWN = frozenset(
    {
        scard.SCARD_E_NO_SERVICE,
        scard.SCARD_E_SERVICE_STOPPED,
        scard.SCARD_E_INVALID_HANDLE,
        scard.SCARD_F_COMM_ERROR,  # libpcsclite's socket to pcscd broke: pcscd went away
        # ECONNRESET on that socket (pcscd died with a request unread, or refused us by polkit)
        scard.SCARD_W_SECURITY_VIOLATION,
    }
)
_CARD_ABSENT = frozenset(
    {
        scard.SCARD_E_NO_SMARTCARD,
        scard.SCARD_W_REMOVED_CARD,
        scard.SCARD_W_UNPOWERED_CARD,
        scard.SCARD_W_UNRESPONSIVE_CARD,
    }
)


def result_text(hresult: int) -> str:
    text = str(scard.SCardGetErrorMessage(hresult) or "")
    return (
        f"{text.strip()} (0x{hresult & 0xFFFFFFFF:08X})"
        if text
        else f"0x{hresult & 0xFFFFFFFF:08X}"
    )


def is_service_down(hresult: int) -> bool:
    return hresult in _SERVICE_DOWN


def error_for(hresult: int, what: str, reader: str | None = None) -> DriverError:
    """Map a PC/SC result code to a driver error with a message safe to show a caller."""
    where = f" on reader {reader!r}" if reader else ""
    detail = result_text(hresult)
    if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
        return ReaderNotFound(f"{what}{where}: no readers attached ({detail})")
    if hresult in _SERVICE_DOWN:
        return PcscServiceUnavailable(
            f"{what}{where}: the PC/SC service (pcscd) is not reachable ({detail})"
        )
    if hresult in _CARD_ABSENT:
        return CardAbsent(f"{what}{where}: no card in the reader or it was removed ({detail})")
    if hresult == scard.SCARD_E_UNKNOWN_READER or hresult == scard.SCARD_E_READER_UNAVAILABLE:
        return ReaderNotFound(f"{what}{where}: reader not available ({detail})")
    if hresult == scard.SCARD_E_SHARING_VIOLATION:
        return ReaderBusy(f"{what}{where}: the card is in use by another application ({detail})")
    if hresult == scard.SCARD_W_RESET_CARD:
        return CardResetError(f"{what}{where}: the card was reset ({detail})")
    if hresult == scard.SCARD_E_TIMEOUT:
        return DeviceTimeout(f"{what}{where}: timed out ({detail})")
    return DeviceIOError(f"{what}{where}: PC/SC error {detail}")
