"""Enumeration, filtering and plug/unplug monitoring over the simulator bus."""

from __future__ import annotations

import threading
from typing import Any

from drivers.hid import DeviceChanges, DeviceFilter, HidapiBackend, HidMonitor, list_devices
from drivers.hid.discovery import HidDeviceInfo
from simulators.hid_otp import SimulatedOtpDevice, SimulatorBus


def test_only_otp_interfaces_of_known_products_are_listed() -> None:
    bus = SimulatorBus()
    otp = bus.plug(SimulatedOtpDevice(serial=1))
    bus.plug(SimulatedOtpDevice(serial=2, vendor_id=0x1234, product_id=0x0001))
    bus.plug(SimulatedOtpDevice(serial=3, product_id=0x0402))  # FIDO-only product
    assert len(bus.enumerate()) == 6  # every device also shows a FIDO interface
    assert [info.path for info in list_devices(bus)] == [otp]
    custom = DeviceFilter.for_products(0x1234, [0x0001])
    assert len(list_devices(bus, custom)) == 1


def test_backend_without_usage_pages_falls_back_to_interface_zero() -> None:
    entry: dict[str, Any] = {
        "path": b"x",
        "vendor_id": 0x1050,
        "product_id": 0x0407,
        "usage_page": 0,
        "usage": 0,
        "interface_number": 0,
    }
    filt = DeviceFilter.for_products(0x1050, [0x0407])
    assert filt.matches(HidDeviceInfo.from_dict(entry))
    assert not filt.matches(HidDeviceInfo.from_dict({**entry, "interface_number": 1}))


def test_monitor_reports_plug_and_unplug_and_replays_state() -> None:
    bus = SimulatorBus()
    monitor = HidMonitor(bus)
    first = bus.plug(SimulatedOtpDevice(serial=1))
    changes = monitor.poll()
    assert [i.path for i in changes.added] == [first] and not changes.removed
    assert not monitor.poll()
    seen: list[DeviceChanges] = []
    monitor.add_observer(seen.append)
    assert [i.path for i in seen[0].added] == [first]  # replayed current state
    second = bus.plug(SimulatedOtpDevice(serial=2))
    bus.unplug(first)
    changes = monitor.poll()
    assert [i.path for i in changes.added] == [second]
    assert [i.path for i in changes.removed] == [first]
    assert seen[-1] == changes
    assert [i.path for i in monitor.devices] == [second]


def test_monitor_thread_notices_changes() -> None:
    bus = SimulatorBus()
    monitor = HidMonitor(bus, interval=0.01)
    arrived = threading.Event()
    monitor.add_observer(lambda ch: arrived.set() if ch.added else None)
    monitor.start()
    try:
        bus.plug(SimulatedOtpDevice(serial=7))
        assert arrived.wait(30)
    finally:
        monitor.stop()


def test_hidapi_backend_enumerates_the_host() -> None:
    # No OTP device is attached to this host; enumeration itself must work.
    assert isinstance(HidapiBackend().enumerate(0x1050, 0), list)
    assert all(info.usage_page in (0, 1) for info in list_devices(HidapiBackend()))
