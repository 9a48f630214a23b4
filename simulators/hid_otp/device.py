"""A simulated OTP HID device that answers feature reports as the hardware does.

It keeps two slots (OATH-HOTP or HMAC-SHA1 challenge-response), their access codes, the
HOTP moving factor, a serial and a firmware version. Frames arrive as 8-byte feature
reports (``0x80 | seq``), are checked by CRC and then processed; processing may take a
configurable time, during which the write flag stays set. Responses leave as ``0x40 | seq``
reports. A touch types the next HOTP code as keyboard input reports.

The device implements the wire behaviour on its own (frame assembly, config parsing, HOTP,
HMAC) so the driver's protocol code is tested against an independent peer; only the CRC and
the constants are shared, and both are checked against published vectors.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from devices.hid_otp.constants import (
    ACC_CODE_SIZE,
    CFG_CHAL_HMAC,
    CONFIG_SIZE,
    FIXED_SIZE,
    FRAME_SIZE,
    LAST_FRAME_SEQ,
    REPORT_DATA_SIZE,
    RESP_PENDING_FLAG,
    RESP_TIMEOUT_WAIT_FLAG,
    SEQUENCE_MASK,
    SLOT_DATA_SIZE,
    SLOT_WRITE_FLAG,
    CfgFlag,
    Command,
    ConfigStateFlag,
    ExtFlag,
    TktFlag,
)
from devices.hid_otp.crc import append_crc, check_crc, crc16
from devices.hid_otp.keyboard import encode_keystrokes

MODHEX = "cbdefghijklnrtuv"
NO_CODE = b"\0" * ACC_CODE_SIZE
DEFAULT_VENDOR_ID = 0x1050
DEFAULT_PRODUCT_ID = 0x0407  # OTP + FIDO + CCID interfaces


class DeviceUnplugged(OSError):
    """Raised by every operation on a device that is no longer attached."""


class Fault(Enum):
    """One-shot faults a test can inject."""

    CORRUPT_RESPONSE = "corrupt-response"  # flip a bit of the next response (CRC mismatch)
    SHORT_REPORT = "short-report"  # the next feature report read is 5 bytes long
    SKIP_RESPONSE_CHUNK = "skip-response-chunk"  # drop a chunk of the next response


@dataclass
class SlotState:
    fixed: bytes
    uid: bytes
    key: bytes
    access_code: bytes
    ext: int
    tkt: int
    cfg: int
    counter: int = 0

    @classmethod
    def parse(cls, data: bytes) -> SlotState | None:
        """The configuration in ``data`` (52 bytes), or None if it is not valid.

        Offsets: fixed 0-15, uid 16-21, key 22-37, access code 38-43, fixed size 44,
        ext flags 45, tkt flags 46, cfg flags 47, rfu 48-49, CRC 50-51.
        """
        if len(data) != CONFIG_SIZE or not check_crc(data):
            return None
        fixed_size = data[44]
        if fixed_size > FIXED_SIZE:
            return None
        state = cls(
            fixed=data[:fixed_size],
            uid=data[16:22],
            key=data[22:38],
            access_code=data[38:44],
            ext=data[45],
            tkt=data[46],
            cfg=data[47],
        )
        if state.is_oath_hotp:
            state.counter = struct.unpack(">H", state.uid[4:6])[0] << 4
        return state

    @property
    def is_chal_hmac(self) -> bool:
        return bool(self.tkt & TktFlag.OATH_HOTP) and self.cfg & CFG_CHAL_HMAC == CFG_CHAL_HMAC

    @property
    def is_oath_hotp(self) -> bool:
        return bool(self.tkt & TktFlag.OATH_HOTP) and not self.cfg & CfgFlag.CHAL_YUBICO

    @property
    def secret20(self) -> bytes:
        return self.key + self.uid[:4]

    def next_hotp(self) -> str:
        digits = 8 if self.cfg & CfgFlag.OATH_HOTP8 else 6
        mac = hmac.new(self.secret20, struct.pack(">Q", self.counter), hashlib.sha1).digest()
        offset = mac[-1] & 0x0F
        value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
        self.counter += 1
        return str(value % 10**digits).zfill(digits)

    def typed_fixed_part(self) -> str:
        if not self.fixed:
            return ""
        mode = self.cfg & (CfgFlag.OATH_FIXED_MODHEX1 | CfgFlag.OATH_FIXED_MODHEX2)
        n_modhex = {0: 0, 0x10: 1, 0x40: 2}.get(mode, len(self.fixed))
        head = "".join(MODHEX[b >> 4] + MODHEX[b & 0xF] for b in self.fixed[:n_modhex])
        return head + self.fixed[n_modhex:].hex()


@dataclass
class _Pending:
    """A command in progress: applied when its processing time has passed."""

    ready_at: float
    action: Callable[[], bytes | None]  # returns response data, or None for a status reply


@dataclass
class _TouchWait:
    deadline: float
    action: Callable[[], bytes | None]


@dataclass
class SimulatedOtpDevice:
    serial: int
    version: tuple[int, int, int] = (5, 4, 3)
    processing_delay: float = 0.0  # seconds a command keeps the write flag set
    touch_timeout: float = 15.0  # seconds the device waits for a touch
    vendor_id: int = DEFAULT_VENDOR_ID
    product_id: int = DEFAULT_PRODUCT_ID
    serial_api_visible: bool = True
    pgm_seq: int = 0
    slots: dict[int, SlotState | None] = field(default_factory=lambda: {1: None, 2: None})

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._typed = threading.Condition(self._lock)
        self._frame = bytearray(FRAME_SIZE)
        self._pending: _Pending | None = None
        self._touch_wait: _TouchWait | None = None
        self._response: list[tuple[int, bytes]] | None = None
        self._response_index = 0
        self._keyboard: deque[bytes] = deque()
        self._faults: set[Fault] = set()
        self._plugged = False
        self._pull_after: int | None = None
        self._on_pull: Callable[[], None] | None = None
        self.reports_written = 0
        self.reports_read = 0
        self.frames_rejected = 0

    # --- attachment (used by the bus) -------------------------------------------------

    @property
    def plugged(self) -> bool:
        return self._plugged

    @property
    def processing(self) -> bool:
        """Is a command still being processed (the write flag set)?"""
        with self._lock:
            self._settle()
            return self._pending is not None

    @property
    def waiting_for_touch(self) -> bool:
        """Is a challenge-response waiting for the button?"""
        with self._lock:
            self._settle()
            return self._touch_wait is not None

    def attach(self, on_pull: Callable[[], None]) -> None:
        with self._lock:
            self._plugged = True
            self._on_pull = on_pull

    def detach(self) -> None:
        """Power goes away: a command still being processed is lost, so is typed input."""
        with self._lock:
            self._plugged = False
            self._pending = None
            self._touch_wait = None
            self._response = None
            self._keyboard.clear()
            self._frame = bytearray(FRAME_SIZE)
            self._typed.notify_all()

    def pull_after(self, operations: int) -> None:
        """Unplug the device after ``operations`` more feature-report reads/writes."""
        with self._lock:
            self._pull_after = operations

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self._faults.add(fault)

    def _count_operation(self) -> None:
        if not self._plugged:
            raise DeviceUnplugged("device disconnected")
        if self._pull_after is not None:
            if self._pull_after <= 0:
                self._pull_after = None
                if self._on_pull is not None:
                    self._on_pull()
                else:
                    self.detach()
                raise DeviceUnplugged("device disconnected")
            self._pull_after -= 1

    # --- feature reports -------------------------------------------------------------

    def write_feature(self, report: bytes) -> None:
        with self._lock:
            self._count_operation()
            self.reports_written += 1
            if len(report) != 8:
                return  # a report of the wrong size is dropped by the HID layer
            self._settle()
            flags = report[7]
            if not flags & SLOT_WRITE_FLAG:
                return
            if self._pending is not None:
                return  # still processing: the write flag was set, the report is lost
            seq = flags & SEQUENCE_MASK
            if seq > LAST_FRAME_SEQ:  # dummy write: abort and leave read mode
                self._response = None
                self._touch_wait = None
                return
            if seq == 0:
                self._frame = bytearray(FRAME_SIZE)
                self._response = None
                self._touch_wait = None
            self._frame[seq * REPORT_DATA_SIZE : (seq + 1) * REPORT_DATA_SIZE] = report[:7]
            if seq == LAST_FRAME_SEQ:
                self._frame_complete(bytes(self._frame))

    def read_feature(self) -> bytes:
        with self._lock:
            self._count_operation()
            self.reports_read += 1
            self._settle()
            if Fault.SHORT_REPORT in self._faults:
                self._faults.discard(Fault.SHORT_REPORT)
                return self._status_report(0)[:5]
            if self._pending is not None:
                return self._status_report(SLOT_WRITE_FLAG)
            if self._touch_wait is not None:
                left = max(0, int(self._touch_wait.deadline - time.monotonic()) + 1)
                return self._status_report(RESP_TIMEOUT_WAIT_FLAG | min(left, 0x1F))
            if self._response is not None:
                index = self._response_index
                if index < len(self._response):
                    self._response_index += 1
                    seq, chunk = self._response[index]
                    return chunk + bytes([RESP_PENDING_FLAG | seq])
                return bytes(7) + bytes([RESP_PENDING_FLAG])  # sequence back at 0: done
            return self._status_report(0)

    def _status_report(self, flags: int) -> bytes:
        major, minor, build = self.version
        return (
            bytes([0, major, minor, build, self.pgm_seq])
            + struct.pack("<H", self.touch_level)
            + bytes([flags])
        )

    @property
    def touch_level(self) -> int:
        level = 0
        for slot, valid, touch in (
            (1, ConfigStateFlag.SLOT1_VALID, ConfigStateFlag.SLOT1_TOUCH),
            (2, ConfigStateFlag.SLOT2_VALID, ConfigStateFlag.SLOT2_TOUCH),
        ):
            state = self.slots[slot]
            if state is not None:
                level |= valid
                if not state.is_chal_hmac:
                    level |= touch
        return level

    def _settle(self) -> None:
        """Finish a command whose processing time has passed; expire a touch wait."""
        now = time.monotonic()
        if self._pending is not None and now >= self._pending.ready_at:
            action = self._pending.action
            self._pending = None
            self._finish(action)
        if self._touch_wait is not None and now >= self._touch_wait.deadline:
            self._touch_wait = None  # gave up waiting: back to plain status

    def _finish(self, action: Callable[[], bytes | None]) -> None:
        data = action()
        if data is None:
            return
        block = bytearray(append_crc(data))
        if Fault.CORRUPT_RESPONSE in self._faults:
            self._faults.discard(Fault.CORRUPT_RESPONSE)
            block[0] ^= 0x01
        padded = bytes(block).ljust(-(-len(block) // 7) * 7, b"\0")
        chunks = [(i // 7, padded[i : i + 7]) for i in range(0, len(padded), 7)]
        if Fault.SKIP_RESPONSE_CHUNK in self._faults and len(chunks) > 2:
            self._faults.discard(Fault.SKIP_RESPONSE_CHUNK)
            del chunks[1]  # a chunk is lost: sequence 2 follows sequence 0
        self._response = chunks
        self._response_index = 0

    # --- commands --------------------------------------------------------------------

    def _frame_complete(self, frame: bytes) -> None:
        payload = frame[:SLOT_DATA_SIZE]
        command = frame[SLOT_DATA_SIZE]
        (stored_crc,) = struct.unpack("<H", frame[SLOT_DATA_SIZE + 1 : SLOT_DATA_SIZE + 3])
        if crc16(payload) != stored_crc:
            self.frames_rejected += 1
            return  # a corrupted frame is ignored
        action = self._command(command, payload)
        if action is None:
            self.frames_rejected += 1
            return
        self._pending = _Pending(time.monotonic() + self.processing_delay, action)
        if self.processing_delay <= 0:
            self._settle()

    def _command(self, command: int, payload: bytes) -> Callable[[], bytes | None] | None:
        """Validate a command; return what to do when processing ends, or None to reject."""
        if command == Command.DEVICE_SERIAL:
            if not self.serial_api_visible:
                return None
            return lambda: struct.pack(">I", self.serial)
        if command in (Command.CONFIG_1, Command.CONFIG_2):
            return self._cmd_config(1 if command == Command.CONFIG_1 else 2, payload)
        if command in (Command.UPDATE_1, Command.UPDATE_2):
            return self._cmd_update(1 if command == Command.UPDATE_1 else 2, payload)
        if command == Command.SWAP:
            return self._cmd_swap(payload)
        if command in (Command.CHAL_HMAC_1, Command.CHAL_HMAC_2):
            return self._cmd_hmac(1 if command == Command.CHAL_HMAC_1 else 2, payload)
        return None  # NDEF, scan map, Yubico OTP challenge, ...: not offered

    def _access_ok(self, slot: int, given: bytes) -> bool:
        state = self.slots[slot]
        return state is None or state.access_code in (NO_CODE, given)

    def _bump_pgm_seq(self) -> None:
        if all(state is None for state in self.slots.values()):
            self.pgm_seq = 0
        else:
            self.pgm_seq = (self.pgm_seq + 1) & 0xFF  # a byte: wraps after 255

    def _cmd_config(self, slot: int, payload: bytes) -> Callable[[], bytes | None] | None:
        config, given = payload[:CONFIG_SIZE], payload[CONFIG_SIZE : CONFIG_SIZE + ACC_CODE_SIZE]
        if not self._access_ok(slot, given):
            return None
        if not any(config):
            new_state = None  # all-zero configuration: delete
        else:
            new_state = SlotState.parse(config)
            if new_state is None:
                return None

        def apply() -> None:
            self.slots[slot] = new_state
            self._bump_pgm_seq()

        return _status_only(apply)

    def _cmd_update(self, slot: int, payload: bytes) -> Callable[[], bytes | None] | None:
        config, given = payload[:CONFIG_SIZE], payload[CONFIG_SIZE : CONFIG_SIZE + ACC_CODE_SIZE]
        state = self.slots[slot]
        if state is None or not state.ext & ExtFlag.ALLOW_UPDATE:
            return None
        if not self._access_ok(slot, given):
            return None
        update = SlotState.parse(config)
        if update is None:
            return None
        if update.tkt & ~0x3F or update.cfg & ~0x0C:
            return None  # only the update-masked flags may change

        def apply() -> None:
            state.ext = update.ext
            state.tkt = (state.tkt & ~0x3F) | update.tkt
            state.cfg = (state.cfg & ~0x0C) | update.cfg
            state.access_code = update.access_code
            self._bump_pgm_seq()

        return _status_only(apply)

    def _cmd_swap(self, payload: bytes) -> Callable[[], bytes | None] | None:
        given = payload[CONFIG_SIZE : CONFIG_SIZE + ACC_CODE_SIZE]
        if not (self._access_ok(1, given) and self._access_ok(2, given)):
            return None

        def apply() -> None:
            self.slots[1], self.slots[2] = self.slots[2], self.slots[1]
            self._bump_pgm_seq()

        return _status_only(apply)

    def _cmd_hmac(self, slot: int, payload: bytes) -> Callable[[], bytes | None] | None:
        state = self.slots[slot]
        if state is None or not state.is_chal_hmac:
            return None
        length = SLOT_DATA_SIZE
        if state.cfg & CfgFlag.HMAC_LT64:
            last = payload[-1]
            while length > 0 and payload[length - 1] == last:
                length -= 1
        challenge = payload[:length]
        key = state.secret20

        def respond() -> bytes:
            return hmac.new(key, challenge, hashlib.sha1).digest()

        if state.cfg & CfgFlag.CHAL_BTN_TRIG:

            def wait_for_touch() -> None:
                self._touch_wait = _TouchWait(time.monotonic() + self.touch_timeout, respond)

            return _status_only(wait_for_touch)
        return respond

    # --- the button and the keyboard -------------------------------------------------

    def touch(self, slot: int = 1) -> str:
        """Press the button (slot 1: short press, slot 2: long press); returns what is typed.

        A challenge-response waiting for a touch completes instead of typing anything.
        """
        with self._lock:
            if not self._plugged:
                raise DeviceUnplugged("device disconnected")
            self._settle()
            if self._touch_wait is not None:
                action = self._touch_wait.action
                self._touch_wait = None
                self._pending = _Pending(time.monotonic() + self.processing_delay, action)
                self._settle()
                return ""
            state = self.slots[slot]
            if state is None or not state.is_oath_hotp:
                return ""
            text = state.typed_fixed_part() + state.next_hotp()
            if state.tkt & TktFlag.APPEND_CR:
                text += "\n"
            self._keyboard.extend(encode_keystrokes(text))
            self._typed.notify_all()
            return text

    def read_keyboard(self, timeout: float | None) -> bytes:
        """The next keyboard input report, or b"" when none comes within ``timeout``."""
        with self._lock:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._keyboard:
                if not self._plugged:
                    raise DeviceUnplugged("device disconnected")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return b""
                self._typed.wait(remaining)
            return self._keyboard.popleft()

    def hotp_counter(self, slot: int = 1) -> int | None:
        state = self.slots[slot]
        return state.counter if state is not None and state.is_oath_hotp else None


def _status_only(apply: Callable[[], None]) -> Callable[[], bytes | None]:
    def action() -> None:
        apply()

    return action


__all__ = ["DeviceUnplugged", "Fault", "SimulatedOtpDevice", "SlotState"]
