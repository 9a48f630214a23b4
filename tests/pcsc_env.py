"""The test run's own pcscd (own socket, own vpcd ports) and virtual cards.

Importing this module points every PC/SC client of the run at a pcscd of its own
(`PCSCLITE_CSOCK_NAME` in `os.environ`: pyscard in this process, and every subprocess the
tests start — authd, OpenSC's tools, yubico-piv-tool — inherits it). The pcscd is started by
the first test that needs it and stopped by its PID at exit; tests that stop it on purpose
start it again through the same object. Another pcscd on the machine (the system's, or other
test runs) is never seen, used or disturbed. Without pcscd or vpcd the tests fail: they do
not skip.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from smartcard import scard

from simulators.smartcard import PcscdError, PrivatePcscd, VirtualCardSlot, open_slot
from simulators.smartcard.pcscd import READER_NAMES

READERS = READER_NAMES
OPENSC_MODULE_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib64/opensc-pkcs11.so",
    "/usr/lib/opensc-pkcs11.so",
)

Pcscd = PrivatePcscd
_ROOT = Path(tempfile.mkdtemp(prefix="authd-test-pcscd-"))
PCSCD = PrivatePcscd(_ROOT)
PCSCD.activate()


def _cleanup() -> None:
    PCSCD.stop()
    shutil.rmtree(_ROOT, ignore_errors=True)


atexit.register(_cleanup)


def opensc_module() -> str | None:
    for candidate in OPENSC_MODULE_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    return None


def require_opensc() -> str:
    """The OpenSC PKCS#11 module and tools (installed by scripts/setup.sh), or fail."""
    module = opensc_module()
    if module is None or shutil.which("pkcs11-tool") is None:
        pytest.fail("OpenSC is not installed (apt: opensc opensc-pkcs11; scripts/setup.sh)")
    return module


def require_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (apt: {package}; scripts/setup.sh)")
    return path


def _start(pcscd: PrivatePcscd) -> None:
    try:
        pcscd.start()
    except PcscdError as exc:
        pytest.fail(f"cannot start the test run's pcscd: {exc}")


@pytest.fixture(scope="session")
def pcscd() -> PrivatePcscd:
    _start(PCSCD)
    return PCSCD


@pytest.fixture
def running_pcscd(pcscd: PrivatePcscd) -> PrivatePcscd:
    """pcscd, (re)started if an earlier test stopped it."""
    _start(pcscd)
    return pcscd


# What pcscd's event thread had counted in each reader (the insertions and removals it saw)
# when wait_card last found a card there; by pcscd process (a restarted one counts from 0).
_COUNTED_PRESENT: dict[tuple[int, str], int] = {}


def wait_card(reader: str, present: bool, timeout: float = 10.0) -> None:
    """Wait until pcscd reports the card in `reader` present (or gone); on timeout fail with
    what pcscd says of the reader and the end of its log.

    Gone means gone for pcscd's event thread, not only in the reader's state: a client's
    reset or power-on after the card was pulled (SCardDisconnect with SCARD_RESET_CARD) asks
    vpcd whether the card is there, which drops the card's closed socket, and marks the reader
    empty without the event thread seeing a removal. A card inserted before that thread's next
    poll is then taken for the one pulled, and the reader stays empty with the new card in it.
    So a card is gone once the reader is empty and the event thread has counted a removal
    since the card was seen present."""
    deadline = time.monotonic() + timeout
    key = (PCSCD.process.pid if PCSCD.process is not None else 0, reader)
    known = None
    while time.monotonic() < deadline:
        known = _next_state(reader, known)
        if known is None:
            time.sleep(0.05)  # pcscd (re)starting, or the reader not there yet
            continue
        holds = bool(known & scard.SCARD_STATE_PRESENT and not known & scard.SCARD_STATE_MUTE)
        counted = known >> 16  # pcsc-lite: the event thread's count, in the high word
        if present and holds:
            _COUNTED_PRESENT[key] = counted
            return
        if not present and not holds and counted != _COUNTED_PRESENT.get(key):
            return
    raise CardNotSeen(
        f"pcscd did not report the card in {reader!r} {'present' if present else 'gone'}"
        f" within {timeout:g} s; the reader: {reader_state(reader)}; pcscd's log:"
        f" {PCSCD.log_tail(8)}"
    )


def _next_state(reader: str, known: int | None, wait_ms: int = 200) -> int | None:
    """`reader`'s state once it differs from `known` (at once when None), or `known` after
    `wait_ms`; None when pcscd or the reader cannot be reached."""
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return None
    try:
        hresult, results = scard.SCardGetStatusChange(
            context, 0 if known is None else wait_ms,
            [(reader, scard.SCARD_STATE_UNAWARE if known is None else known)])
        if hresult == scard.SCARD_E_TIMEOUT:
            return known
        if hresult != scard.SCARD_S_SUCCESS:
            return None
        return int(results[0][1]) & ~scard.SCARD_STATE_CHANGED
    finally:
        scard.SCardReleaseContext(context)


class CardNotSeen(AssertionError):
    """pcscd did not report a virtual card's insertion or removal in time."""


def reader_state(reader: str) -> str:
    """pcscd's own word on `reader`: its state flags and the card's ATR."""
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return f"no PC/SC context ({scard.SCardGetErrorMessage(hresult)})"
    try:
        hresult, results = scard.SCardGetStatusChange(
            context, 0, [(reader, scard.SCARD_STATE_UNAWARE)])
        if hresult != scard.SCARD_S_SUCCESS:
            return scard.SCardGetErrorMessage(hresult)
        _name, state, atr = results[0]
        flags = [name.removeprefix("SCARD_STATE_") for name in dir(scard)
                 if name.startswith("SCARD_STATE_") and name != "SCARD_STATE_UNAWARE"
                 and state & getattr(scard, name)]
        return f"state {'|'.join(sorted(flags)) or 'none'}, ATR {bytes(atr).hex() or 'none'}"
    finally:
        scard.SCardReleaseContext(context)


CardFactory = Callable[..., VirtualCardSlot]


@pytest.fixture
def card_factory(running_pcscd: PrivatePcscd, tmp_path: Path) -> Iterator[CardFactory]:
    """Insert virtual cards: `card_factory(reader_index=0, name="card") -> VirtualCardSlot`."""
    slots: list[VirtualCardSlot] = []

    def insert(reader_index: int = 0, name: str = "card") -> VirtualCardSlot:
        slot = open_slot(tmp_path / f"{name}.json", running_pcscd.port(reader_index))
        slot.insert()
        slots.append(slot)
        try:
            wait_card(READERS[reader_index], True)
        except CardNotSeen as first:
            # What a person does with a card a reader did not take: pull it and insert it
            # again, once. The warning keeps what pcscd said the first time.
            warnings.warn(f"virtual card inserted a second time: {first}", stacklevel=2)
            slot.remove()
            wait_card(READERS[reader_index], False)
            slot.insert()
            wait_card(READERS[reader_index], True)
        return slot

    yield insert
    for slot in slots:
        slot.remove()
    for index in range(len(READERS)):
        if running_pcscd.running:
            wait_card(READERS[index], False)


@pytest.fixture
def card(card_factory: CardFactory) -> VirtualCardSlot:
    """One fresh virtual PIV card in reader 0 (default PIN 123456, PUK 12345678)."""
    return card_factory()
