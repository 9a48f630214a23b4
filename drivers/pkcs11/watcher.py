"""Token plug/unplug events by polling the slot lists of the loaded modules.

Like pyscard's card monitor: each poll diffs a snapshot of present tokens into
inserted/removed events, and a new subscriber first receives the current state
(one ``PRESENT`` event per token) so it never has to list separately.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum, unique

from drivers.pkcs11.module import ModuleSet, TokenInfo

log = logging.getLogger(__name__)


@unique
class TokenEventKind(StrEnum):
    PRESENT = "present"  # replayed current state for a new subscriber
    INSERTED = "inserted"
    REMOVED = "removed"


@dataclass(frozen=True)
class TokenEvent:
    kind: TokenEventKind
    token: TokenInfo


Listener = Callable[[TokenEvent], None]
_Key = tuple[str, str]  # (module path, serial)


class TokenWatcher:
    """Polls the modules every ``interval`` seconds on a daemon thread."""

    def __init__(self, modules: ModuleSet, interval: float = 0.5) -> None:
        self.modules = modules
        self.interval = interval
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._snapshot: dict[_Key, TokenInfo] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="pkcs11-token-watcher", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add a listener; it first gets the present tokens, as they are now (a snapshot of
        the last poll would tell a login that has ended since). Returns the unsubscribe
        function."""
        with self._lock:
            self._poll_locked()
            current = list(self._snapshot.values()) if self._snapshot is not None else []
            self._listeners.append(listener)
            for token in current:
                _deliver(listener, TokenEvent(TokenEventKind.PRESENT, token))

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def poll(self) -> list[TokenEvent]:
        """Take one snapshot now and publish the differences."""
        with self._lock:
            return self._poll_locked()

    def _poll_locked(self) -> list[TokenEvent]:
        now = {(t.module, t.serial): t for t in self.modules.tokens()}
        before = self._snapshot
        self._snapshot = now
        if before is None:
            return []
        events = [TokenEvent(TokenEventKind.REMOVED, t) for k, t in before.items() if k not in now]
        events += [
            TokenEvent(TokenEventKind.INSERTED, t) for k, t in now.items() if k not in before
        ]
        for event in events:
            for listener in list(self._listeners):
                _deliver(listener, event)
        return events

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception:
                log.exception("polling PKCS#11 tokens failed")


def _deliver(listener: Listener, event: TokenEvent) -> None:
    try:
        listener(event)
    except Exception:
        log.exception("token event listener failed")
