"""The OTP HID devices attached to this host, found by serial and used one caller at a time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from devices.errors import AuthdError, NoSuchObject
from devices.hid_otp import HidOtpSession, Status, Timeouts
from drivers.errors import DriverError
from drivers.hid import OTP_DEVICES, DeviceFilter, HidBackend, HidDeviceInfo, OtpHidConnection
from drivers.hid import list_devices as enumerate_devices


@dataclass(frozen=True)
class AttachedDevice:
    info: HidDeviceInfo
    serial: int  # 0 when unreadable
    status: Status | None
    error: str = ""


@dataclass
class OpenDevice:
    info: HidDeviceInfo
    serial: int
    connection: OtpHidConnection
    session: HidOtpSession


class DeviceManager:
    def __init__(
        self,
        backend: HidBackend,
        device_filter: DeviceFilter = OTP_DEVICES,
        timeouts: Timeouts | None = None,
    ) -> None:
        self.backend = backend
        self.filter = device_filter
        self.timeouts = timeouts or Timeouts()
        self._lock = threading.Lock()
        self._serials: dict[bytes, int] = {}  # path -> serial, for devices still attached
        self._infos: dict[bytes, HidDeviceInfo] = {}
        self._device_locks: dict[bytes, threading.Lock] = {}

    def _path_lock(self, path: bytes) -> threading.Lock:
        with self._lock:
            return self._device_locks.setdefault(path, threading.Lock())

    def _enumerate(self) -> list[HidDeviceInfo]:
        infos = enumerate_devices(self.backend, self.filter)
        present = {info.path for info in infos}
        with self._lock:
            for path in list(self._serials):
                if path not in present:
                    del self._serials[path]
            self._infos = {info.path: info for info in infos}
        return infos

    def _session(self, info: HidDeviceInfo) -> tuple[OtpHidConnection, HidOtpSession]:
        connection = OtpHidConnection.open(self.backend, info.path)
        try:
            return connection, HidOtpSession(connection, self.timeouts)
        except BaseException:
            connection.close()
            raise

    def _serial_of(self, info: HidDeviceInfo, session: HidOtpSession) -> int:
        with self._lock:
            known = self._serials.get(info.path)
        if known is not None:
            return known
        serial = session.serial()
        with self._lock:
            self._serials[info.path] = serial
        return serial

    def list(self) -> list[AttachedDevice]:
        found = []
        for info in self._enumerate():
            with self._path_lock(info.path):
                try:
                    connection, session = self._session(info)
                except DriverError as exc:
                    found.append(AttachedDevice(info, 0, None, str(exc)))
                    continue
                try:
                    status = session.status()
                    serial = self._serial_of(info, session)
                    found.append(AttachedDevice(info, serial, status))
                except Exception as exc:
                    found.append(AttachedDevice(info, 0, None, str(exc)))
                finally:
                    connection.close()
        return found

    def _try(
        self, info: HidDeviceInfo, serial: int, *, fresh: bool
    ) -> tuple[threading.Lock, OtpHidConnection, HidOtpSession] | None:
        """Open ``info`` and hold its lock if it is the device with ``serial``."""
        lock = self._path_lock(info.path)
        lock.acquire()
        try:
            connection, session = self._session(info)
        except DriverError:
            lock.release()
            return None
        try:
            if fresh:  # the path may have been reused by another device: ask it
                device_serial = session.serial()
                with self._lock:
                    self._serials[info.path] = device_serial
            else:
                device_serial = self._serial_of(info, session)
        except (DriverError, AuthdError):
            device_serial = 0  # not readable: not the device asked for
        if device_serial != serial:
            connection.close()
            lock.release()
            return None
        return lock, connection, session

    def _claim(self, serial: int) -> tuple[OpenDevice, threading.Lock] | None:
        with self._lock:
            cached = [info for path, info in self._infos.items()
                      if self._serials.get(path) == serial]
        for info in cached:  # fast path: where the device was last seen
            claimed = self._try(info, serial, fresh=True)
            if claimed is not None:
                lock, connection, session = claimed
                return OpenDevice(info, serial, connection, session), lock
        for info in self._enumerate():
            with self._lock:
                known = self._serials.get(info.path)
            if known is not None and known != serial:
                continue
            claimed = self._try(info, serial, fresh=False)
            if claimed is not None:
                lock, connection, session = claimed
                return OpenDevice(info, serial, connection, session), lock
        return None

    @contextmanager
    def open(self, serial: int) -> Iterator[OpenDevice]:
        """The attached device with ``serial``, held exclusively while the block runs."""
        claimed = self._claim(serial)
        if claimed is None:
            raise NoSuchObject(f"no OTP HID device with serial {serial} is attached")
        device, lock = claimed
        try:
            yield device
        finally:
            device.connection.close()
            lock.release()
