"""Reader and card events: snapshots of the PC/SC state, diffed into added/removed events.

One thread polls pcscd with SCardGetStatusChange and survives pcscd going away and coming
back. A new subscriber first receives the current state (as "added" events), then changes.
The log says when pcscd becomes unreachable and when it is back (one line each), not every
retry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from smartcard import scard

from drivers.errors import DriverError
from drivers.pcsc.context import PNP_NOTIFICATION, PcscContext
from drivers.pcsc.events import ReaderEvent, Snapshot, diff

log = logging.getLogger(__name__)

_POLL_MS = 1000
_RETRY_SECONDS = 0.5


EMPTY = Snapshot(available=False, readers={})

Listener = Callable[[ReaderEvent], None]


class ReaderMonitor:
    """Watches pcscd in a background thread and fans events out to listeners."""

    def __init__(self, poll_ms: int = _POLL_MS) -> None:
        self._poll_ms = poll_ms
        self._context = PcscContext()
        self._lock = threading.Lock()  # the snapshot and the listener list, held briefly
        # Event delivery, in order: a listener may read snapshot() or subscribe meanwhile
        self._delivery = threading.RLock()
        self._listeners: list[Listener] = []
        self._snapshot = EMPTY
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._service_down = False  # already logged as unreachable

    def start(self, wait: float = 2.0) -> ReaderMonitor:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pcsc-monitor", daemon=True)
            self._thread.start()
        self._ready.wait(wait)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._context.cancel()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._context.close()

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Replay the current state to `listener`, then deliver changes; returns unsubscribe."""
        with self._delivery:
            with self._lock:
                current = self._snapshot
                self._listeners.append(listener)
            for event in diff(Snapshot(available=False, readers={}), current):
                _deliver(listener, event)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def _publish(self, snapshot: Snapshot) -> None:
        with self._delivery:
            with self._lock:
                events = diff(self._snapshot, snapshot)
                self._snapshot = snapshot
                listeners = list(self._listeners)
            for event in events:
                for listener in listeners:
                    _deliver(listener, event)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._watch()
            except DriverError as exc:
                if not self._service_down:
                    self._service_down = True
                    log.warning(
                        "PC/SC service unavailable: %s; retrying every %g s", exc, _RETRY_SECONDS
                    )
            self._context.invalidate()
            self._publish(EMPTY)
            self._ready.set()
            self._stop.wait(_RETRY_SECONDS)

    def _watch(self) -> None:
        """Follow pcscd until it goes away (raises) or the monitor is stopped."""
        handle = self._context.handle()
        while not self._stop.is_set():
            hresult, readers = scard.SCardListReaders(handle, [])
            if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
                readers = []
            else:
                self._context.check(hresult, "listing readers")
            # the current state of every reader (UNAWARE: answered at once) ...
            query = [(name, scard.SCARD_STATE_UNAWARE) for name in [*readers, PNP_NOTIFICATION]]
            hresult, results = scard.SCardGetStatusChange(handle, 0, query)
            self._context.check(hresult, "reading reader states")
            if self._service_down:
                self._service_down = False
                log.info("PC/SC service (pcscd) reachable again")
            snapshot = Snapshot(available=True, readers={})
            known: list[tuple[str, int]] = []
            for name, state, atr in results:
                known.append((name, state & ~scard.SCARD_STATE_CHANGED))
                if name == PNP_NOTIFICATION:
                    continue
                present = state & scard.SCARD_STATE_PRESENT and not state & scard.SCARD_STATE_MUTE
                snapshot.readers[name] = bytes(atr) if present and atr else None
            self._publish(snapshot)
            self._ready.set()
            # ... then block until something differs from it
            hresult, _results = scard.SCardGetStatusChange(handle, self._poll_ms, known)
            if hresult in (scard.SCARD_E_TIMEOUT, scard.SCARD_E_CANCELLED):
                continue
            if hresult == scard.SCARD_E_UNKNOWN_READER:
                continue  # a reader went away between the list and the wait
            self._context.check(hresult, "waiting for reader changes")


def _deliver(listener: Listener, event: ReaderEvent) -> None:
    try:
        listener(event)
    except Exception:  # a listener's failure must not stop the monitor
        log.exception("reader event listener failed")


def wait_for(
    monitor: ReaderMonitor, predicate: Callable[[Snapshot], bool], timeout: float = 5.0
) -> Snapshot:
    """Block until the monitor's snapshot satisfies `predicate` (for tools and tests)."""
    deadline = time.monotonic() + timeout
    while True:
        snapshot = monitor.snapshot()
        if predicate(snapshot):
            return snapshot
        if time.monotonic() >= deadline:
            raise TimeoutError("reader state did not reach the expected condition")
        time.sleep(0.02)
