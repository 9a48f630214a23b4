"""A simulated USB bus: devices plug in and out at run time; enumeration as hidapi's.

The bus offers the same two calls as the real hidapi backend (``enumerate`` returning
hidapi's dictionaries, ``open_path`` returning an open device object), so the driver's
enumeration, monitoring and connection code run over it unchanged.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from simulators.hid_otp.device import DeviceUnplugged, SimulatedOtpDevice
from simulators.hid_otp.handle import SimulatedHidHandle

FIDO_USAGE_PAGE = 0xF1D0


class SimulatorBus:
    def __init__(self, name: str = "sim") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._devices: dict[bytes, SimulatedOtpDevice] = {}
        self._counter = itertools.count(1)

    def plug(self, device: SimulatedOtpDevice) -> bytes:
        """Attach ``device``; returns its path (a new one on every plug, like hidraw)."""
        with self._lock:
            if device.plugged:
                raise ValueError("device is already plugged in")
            path = f"{self._name}:hidraw{next(self._counter)}".encode()
            self._devices[path] = device
            device.attach(on_pull=lambda: self._pulled(path))
            return path

    def _detach(self, path: bytes) -> SimulatedOtpDevice | None:
        """Remove the device at ``path`` from the bus (its power goes away)."""
        with self._lock:
            device = self._devices.pop(path, None)
        if device is not None:
            device.detach()
        return device

    def _pulled(self, path: bytes) -> None:
        self._detach(path)

    def unplug(self, target: bytes | SimulatedOtpDevice) -> SimulatedOtpDevice:
        if isinstance(target, SimulatedOtpDevice):
            path = self.path_of(target)
            if path is None:
                raise KeyError("device is not plugged in")
            target = path
        device = self._detach(target)
        if device is None:
            raise KeyError("no device at that path")
        return device

    def path_of(self, device: SimulatedOtpDevice) -> bytes | None:
        with self._lock:
            for path, dev in self._devices.items():
                if dev is device:
                    return path
        return None

    def devices(self) -> dict[bytes, SimulatedOtpDevice]:
        with self._lock:
            return dict(self._devices)

    def find(self, serial: int) -> SimulatedOtpDevice | None:
        for device in self.devices().values():
            if device.serial == serial:
                return device
        return None

    # --- the hands at the terminal, by serial (drivers.hid.SimulatedHidBus) ------------

    def plug_new(self, serial: int, firmware: tuple[int, int, int] = (5, 4, 3),
                 processing_delay: float = 0.0) -> bytes:
        if self.find(serial) is not None:
            raise KeyError(f"a device with serial {serial} is plugged in")
        return self.plug(SimulatedOtpDevice(serial=serial, version=firmware,
                                            processing_delay=processing_delay))

    def unplug_serial(self, serial: int) -> None:
        device = self.find(serial)
        if device is None:
            raise KeyError(f"no device with serial {serial} is plugged in")
        self.unplug(device)

    def path_of_serial(self, serial: int) -> bytes | None:
        device = self.find(serial)
        return None if device is None else self.path_of(device)

    def processing(self, serial: int) -> bool:
        device = self.find(serial)
        if device is None:
            raise KeyError(f"no device with serial {serial} is plugged in")
        return device.processing

    def touch(self, serial: int, slot: int) -> None:
        device = self.find(serial)
        if device is None:
            raise KeyError(f"no device with serial {serial} is plugged in")
        device.touch(slot)

    # --- the hidapi-shaped backend calls -----------------------------------------------

    def enumerate(self, vendor_id: int = 0, product_id: int = 0) -> list[dict[str, Any]]:
        """hidapi dictionaries: each device shows its OTP keyboard and its FIDO interface."""
        found = []
        for path, dev in sorted(self.devices().items()):
            if vendor_id and dev.vendor_id != vendor_id:
                continue
            if product_id and dev.product_id != product_id:
                continue
            common = {
                "vendor_id": dev.vendor_id,
                "product_id": dev.product_id,
                "serial_number": "",
                "release_number": 0x0100 * dev.version[0] + dev.version[1],
                "manufacturer_string": "authd simulator",
                "product_string": "OTP HID device (simulated)",
            }
            found.append(
                {
                    **common,
                    "path": path,
                    "usage_page": 0x0001,
                    "usage": 0x0006,
                    "interface_number": 0,
                }
            )
            found.append(
                {
                    **common,
                    "path": path + b":fido",
                    "usage_page": FIDO_USAGE_PAGE,
                    "usage": 0x0001,
                    "interface_number": 1,
                }
            )
        return found

    def open_path(self, path: bytes) -> SimulatedHidHandle:
        with self._lock:
            device = self._devices.get(path)
        if device is None:
            raise DeviceUnplugged("open failed: no such device")
        return SimulatedHidHandle(device)
