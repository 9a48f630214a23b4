"""Noticing plug and unplug by diffing enumeration snapshots.

Like pyscard's card monitoring: an observer first receives the current devices as
"added", then every change. ``poll()`` takes one snapshot; ``start()`` polls in a thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from drivers.errors import DriverError
from drivers.hid.backend import HidBackend
from drivers.hid.discovery import OTP_DEVICES, DeviceFilter, HidDeviceInfo, list_devices

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceChanges:
    added: tuple[HidDeviceInfo, ...] = ()
    removed: tuple[HidDeviceInfo, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)


Observer = Callable[[DeviceChanges], None]


class HidMonitor:
    def __init__(
        self,
        backend: HidBackend,
        device_filter: DeviceFilter = OTP_DEVICES,
        *,
        interval: float = 0.5,
    ) -> None:
        self._backend = backend
        self._filter = device_filter
        self._interval = interval
        self._lock = threading.Lock()
        self._known: dict[bytes, HidDeviceInfo] = {}
        self._observers: list[Observer] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def devices(self) -> list[HidDeviceInfo]:
        with self._lock:
            return [self._known[p] for p in sorted(self._known)]

    def add_observer(self, observer: Observer) -> None:
        with self._lock:
            self._observers.append(observer)
            current = tuple(self._known[p] for p in sorted(self._known))
        if current:
            observer(DeviceChanges(added=current))

    def remove_observer(self, observer: Observer) -> None:
        with self._lock:
            self._observers.remove(observer)

    def poll(self) -> DeviceChanges:
        snapshot = {info.path: info for info in list_devices(self._backend, self._filter)}
        with self._lock:
            added = tuple(snapshot[p] for p in sorted(snapshot.keys() - self._known.keys()))
            removed = tuple(self._known[p] for p in sorted(self._known.keys() - snapshot.keys()))
            self._known = snapshot
            observers = list(self._observers)
        changes = DeviceChanges(added, removed)
        if changes:
            for observer in observers:
                try:
                    observer(changes)
                except Exception:
                    log.exception("HID monitor observer failed")
        return changes

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="hid-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except DriverError:
                log.warning("HID enumeration failed; retrying")
            self._stop.wait(self._interval)
