"""pcscd (with the vpcd reader driver) as a child process of the test run, and virtual cards.

One pcscd serves the whole session: the first test that needs it starts `pcscd -f`; it is
stopped by its PID (SIGTERM) when the test process exits. Tests that stop pcscd on purpose
call `restart()`/`start()` through the same object. Never relies on a pcscd already running.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from simulators.smartcard import VirtualCardSlot, open_slot

SOCKET = Path("/run/pcscd/pcscd.comm")
VPCD_PORTS = (35963, 35964)
READERS = ("Virtual PCD 00 00", "Virtual PCD 00 01")
OPENSC_MODULE_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib64/opensc-pkcs11.so",
    "/usr/lib/opensc-pkcs11.so",
)


def _socket_live() -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(str(SOCKET)) == 0


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def missing_reason() -> str | None:
    """Why the PC/SC tests cannot run here (None: they can)."""
    if shutil.which("pcscd") is None:
        return "pcscd is not installed (apt: pcscd vsmartcard-vpcd)"
    if not Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so").exists():
        return "the vpcd reader driver is not installed (apt: vsmartcard-vpcd)"
    return None


def opensc_module() -> str | None:
    for candidate in OPENSC_MODULE_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    return None


class Pcscd:
    """The session's pcscd child."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"authd-test-pcscd-{os.getpid()}.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        if _socket_live():
            pytest.skip(
                "another pcscd is running (its socket answers); the tests start their own"
                " pcscd: stop it first"
            )
        SOCKET.unlink(missing_ok=True)  # stale socket of a pcscd that died
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(["pcscd", "-f"], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not (SOCKET.exists() and all(_port_open(port) for port in VPCD_PORTS)):
            if self.process.poll() is not None:
                raise RuntimeError(f"pcscd exited with {self.process.returncode}; see {self.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"pcscd did not come up; see {self.log}")
            time.sleep(0.02)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


PCSCD = Pcscd()
atexit.register(PCSCD.stop)


@pytest.fixture(scope="session")
def pcscd() -> Pcscd:
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    PCSCD.start()
    return PCSCD


@pytest.fixture
def running_pcscd(pcscd: Pcscd) -> Pcscd:
    """pcscd, (re)started if an earlier test stopped it."""
    pcscd.start()
    return pcscd


def wait_card(reader: str, present: bool, timeout: float = 5.0) -> None:
    """Wait until pcscd reports the card in `reader` present (or gone)."""
    from drivers.pcsc.monitor import ReaderMonitor, wait_for

    monitor = ReaderMonitor(poll_ms=200).start()
    try:
        wait_for(monitor, lambda snap: (snap.readers.get(reader) is not None) == present, timeout)
    finally:
        monitor.stop()


CardFactory = Callable[..., VirtualCardSlot]


@pytest.fixture
def card_factory(running_pcscd: Pcscd, tmp_path: Path) -> Iterator[CardFactory]:
    """Insert virtual cards: `card_factory(reader_index=0, name="card") -> VirtualCardSlot`."""
    slots: list[VirtualCardSlot] = []

    def insert(reader_index: int = 0, name: str = "card") -> VirtualCardSlot:
        slot = open_slot(tmp_path / f"{name}.json", VPCD_PORTS[reader_index])
        slot.insert()
        slots.append(slot)
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
