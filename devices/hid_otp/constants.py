"""Wire constants of the YubiKey OTP HID protocol (feature reports, frames, configs).

Values follow Yubico's public headers (``ykdef.h``) and ``yubikit``.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag, unique

# Feature reports: 7 data bytes and one flags/sequence byte.
FEATURE_REPORT_SIZE = 8
REPORT_DATA_SIZE = FEATURE_REPORT_SIZE - 1
STATUS_BYTE = FEATURE_REPORT_SIZE - 1

# Frames: 64 payload bytes, command byte, CRC-16 (little-endian), 3 filler bytes.
SLOT_DATA_SIZE = 64
FRAME_SIZE = SLOT_DATA_SIZE + 6
FRAME_REPORTS = FRAME_SIZE // REPORT_DATA_SIZE  # 10, sequence numbers 0..9
LAST_FRAME_SEQ = FRAME_REPORTS - 1

# Bits of the last byte of a feature report.
SLOT_WRITE_FLAG = 0x80  # set by the host on a write, cleared by the device when processed
RESP_PENDING_FLAG = 0x40  # the device has response data for the host
RESP_TIMEOUT_WAIT_FLAG = 0x20  # the device waits for a touch; seconds left in the low 5 bits
RESP_TIMEOUT_WAIT_MASK = 0x1F
SEQUENCE_MASK = 0x1F
DUMMY_REPORT_WRITE = 0x8F  # a write with an invalid sequence: abort / reset the read state

# Status block (bytes 1..6 of an idle feature report).
STATUS_OFFSET_VERSION = 1
STATUS_OFFSET_PGM_SEQ = 4
STATUS_OFFSET_TOUCH_LOW = 5
STATUS_OFFSET_TOUCH_HIGH = 6
CONFIG_STATUS_MASK = 0x1F

# Sizes of the configuration structure and its parts.
FIXED_SIZE = 16
UID_SIZE = 6
KEY_SIZE = 16
ACC_CODE_SIZE = 6
CONFIG_SIZE = 52
CONFIG_CRC_OFFSET = CONFIG_SIZE - 2
OATH_SEED_SIZE = 20  # key field + first 4 bytes of the uid field
HMAC_KEY_SIZE = 20
HMAC_CHALLENGE_SIZE = 64
HMAC_RESPONSE_SIZE = 20
SERIAL_SIZE = 4

# HID identity of the OTP (keyboard) interface.
YUBICO_VENDOR_ID = 0x1050
USAGE_PAGE_GENERIC_DESKTOP = 0x0001
USAGE_KEYBOARD = 0x0006


@unique
class Slot(IntEnum):
    ONE = 1
    TWO = 2


@unique
class Command(IntEnum):
    """The slot/command byte of a frame."""

    CONFIG_1 = 0x01
    NAV = 0x02
    CONFIG_2 = 0x03
    UPDATE_1 = 0x04
    UPDATE_2 = 0x05
    SWAP = 0x06
    NDEF_1 = 0x08
    NDEF_2 = 0x09
    DEVICE_SERIAL = 0x10
    DEVICE_CONFIG = 0x11
    SCAN_MAP = 0x12
    YK4_CAPABILITIES = 0x13
    CHAL_OTP_1 = 0x20
    CHAL_OTP_2 = 0x28
    CHAL_HMAC_1 = 0x30
    CHAL_HMAC_2 = 0x38

    @staticmethod
    def config(slot: Slot) -> Command:
        return Command.CONFIG_1 if slot == Slot.ONE else Command.CONFIG_2

    @staticmethod
    def update(slot: Slot) -> Command:
        return Command.UPDATE_1 if slot == Slot.ONE else Command.UPDATE_2

    @staticmethod
    def chal_hmac(slot: Slot) -> Command:
        return Command.CHAL_HMAC_1 if slot == Slot.ONE else Command.CHAL_HMAC_2


class TktFlag(IntFlag):
    TAB_FIRST = 0x01
    APPEND_TAB1 = 0x02
    APPEND_TAB2 = 0x04
    APPEND_DELAY1 = 0x08
    APPEND_DELAY2 = 0x10
    APPEND_CR = 0x20
    OATH_HOTP = 0x40  # also CHAL_RESP (with a CFGFLAG_CHAL_* mode)
    PROTECT_CFG2 = 0x80


TKT_CHAL_RESP = TktFlag.OATH_HOTP


class CfgFlag(IntFlag):
    SEND_REF = 0x01
    OATH_HOTP8 = 0x02  # SHORT_TICKET in static modes
    HMAC_LT64 = 0x04  # PACING_10MS in keyboard modes
    CHAL_BTN_TRIG = 0x08  # PACING_20MS in keyboard modes
    OATH_FIXED_MODHEX1 = 0x10
    CHAL_YUBICO = 0x20  # STATIC_TICKET in keyboard modes
    OATH_FIXED_MODHEX2 = 0x40
    MAN_UPDATE = 0x80


CFG_CHAL_HMAC = CfgFlag.CHAL_YUBICO | CfgFlag.OATH_HOTP8  # 0x22
CFG_OATH_FIXED_MASK = CfgFlag.OATH_FIXED_MODHEX1 | CfgFlag.OATH_FIXED_MODHEX2


class ExtFlag(IntFlag):
    SERIAL_BTN_VISIBLE = 0x01
    SERIAL_USB_VISIBLE = 0x02
    SERIAL_API_VISIBLE = 0x04
    USE_NUMERIC_KEYPAD = 0x08
    FAST_TRIG = 0x10
    ALLOW_UPDATE = 0x20
    DORMANT = 0x40
    LED_INV = 0x80


# Flags an UPDATE command may change.
TKT_UPDATE_MASK = (
    TktFlag.TAB_FIRST
    | TktFlag.APPEND_TAB1
    | TktFlag.APPEND_TAB2
    | TktFlag.APPEND_DELAY1
    | TktFlag.APPEND_DELAY2
    | TktFlag.APPEND_CR
)
CFG_UPDATE_MASK = CfgFlag.HMAC_LT64 | CfgFlag.CHAL_BTN_TRIG  # the two pacing bits
EXT_UPDATE_MASK = 0xFF


class ConfigStateFlag(IntFlag):
    """Bits of the status block's touch-level field."""

    SLOT1_VALID = 0x01
    SLOT2_VALID = 0x02
    SLOT1_TOUCH = 0x04
    SLOT2_TOUCH = 0x08
    LED_INV = 0x10
