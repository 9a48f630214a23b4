"""Yubico's PIV extensions, the part the virtual card answers (developers.yubico.com/PIV/
Introduction/Yubico_extensions.html; what yubikit's `PivSession`, ykman and yubico-piv-tool send
beside SP 800-73-4).

The card reports PIV application version 5.4.3, the YubiKey firmware whose PIV extensions it
implements as far as they fit a card without buttons or attestation keys:

- FD GET VERSION: 5.4.3.
- F8 GET SERIAL: the last 31 bits of the card serial (the CHUID's GUID ends with them);
  YubiKey serials are below 2^31 and tools print them as signed 32-bit numbers.
- F7 GET METADATA: PIN and PUK (default or not, tries total and left); the management key
  (algorithm, default or not); key slots (algorithm, PIN and touch policy, origin, public
  key). An empty slot answers 6A88.
- FF SET MANAGEMENT KEY: 3DES or AES-128/192/256, after management-key authentication;
  P2 FE (touch required) is refused with 6A86: the card has no touch sensor.
- FA SET PIN RETRIES: after management-key authentication and PIN verification; PIN and PUK
  go back to their defaults, as on a YubiKey.
- FB RESET: only while both PIN and PUK are blocked (6985 otherwise); the defaults come back,
  keys and data objects are gone.

Not answered (6D00, "instruction not supported"): ATTEST (F9: the card has no attestation key
and certificate from a manufacturer, and a self-made one would prove nothing), IMPORT KEY (FE),
MOVE/DELETE KEY (F6, firmware 5.7). Keys are generated on the card only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simulators.smartcard.state import (
    ALG_3DES,
    DEFAULT_MANAGEMENT_KEY,
    DEFAULT_PIN,
    DEFAULT_PUK,
    PIN_RETRIES,
    PUK_RETRIES,
)
from simulators.smartcard.status import (
    SW_CONDITIONS,
    SW_INCORRECT_P1P2,
    SW_REF_NOT_FOUND,
    SW_SECURITY,
    SW_WRONG_DATA,
    StatusError,
)
from simulators.smartcard.tlv import tlv

if TYPE_CHECKING:
    from simulators.smartcard.card import Command, PivCard

FIRMWARE_VERSION = (5, 4, 3)

INS_SET_MGMKEY = 0xFF
INS_RESET = 0xFB
INS_SET_PIN_RETRIES = 0xFA
INS_GET_SERIAL = 0xF8
INS_GET_METADATA = 0xF7
INS_GET_VERSION = 0xFD
INSTRUCTIONS = (
    INS_SET_MGMKEY,
    INS_RESET,
    INS_SET_PIN_RETRIES,
    INS_GET_SERIAL,
    INS_GET_METADATA,
    INS_GET_VERSION,
)

PIN_POLICY_DEFAULT = 0
PIN_POLICY_NEVER = 1
PIN_POLICY_ONCE = 2
TOUCH_POLICY_DEFAULT = 0
TOUCH_POLICY_NEVER = 1
ORIGIN_GENERATED = 1
TAG_PIN_POLICY = 0xAA
TAG_TOUCH_POLICY = 0xAB

TAG_ALGORITHM = 0x01
TAG_POLICY = 0x02
TAG_ORIGIN = 0x03
TAG_PUBLIC_KEY = 0x04
TAG_DEFAULT = 0x05
TAG_RETRIES = 0x06

_KEY_PIN = 0x80
_KEY_PUK = 0x81
_KEY_MANAGEMENT = 0x9B
_MANAGEMENT_KEY_LENGTHS = {ALG_3DES: 24, 0x08: 16, 0x0A: 24, 0x0C: 32}


def pin_policy(slot: int, no_pin_slots: tuple[int, ...]) -> int:
    return PIN_POLICY_NEVER if slot in no_pin_slots else PIN_POLICY_ONCE


def check_generation_policies(slot: int, control: dict[int, bytes],
                              no_pin_slots: tuple[int, ...]) -> None:
    """GENERATE's optional PIN/touch policy tags: the slot's own policy or the default only
    (the card's policies are fixed per slot; it has no touch sensor)."""
    pin = control.get(TAG_PIN_POLICY, bytes([PIN_POLICY_DEFAULT]))
    touch = control.get(TAG_TOUCH_POLICY, bytes([TOUCH_POLICY_DEFAULT]))
    if pin not in (bytes([PIN_POLICY_DEFAULT]), bytes([pin_policy(slot, no_pin_slots)])):
        raise StatusError(SW_WRONG_DATA)
    if touch not in (bytes([TOUCH_POLICY_DEFAULT]), bytes([TOUCH_POLICY_NEVER])):
        raise StatusError(SW_WRONG_DATA)


def serial_number(card_serial: bytes) -> int:
    """The YubiKey-style serial of a card: its serial's last 31 bits."""
    return int.from_bytes(card_serial[-4:], "big") & 0x7FFFFFFF


class YubicoExtensions:
    """Answers the instructions in `INSTRUCTIONS` for one card (its state and session)."""

    def __init__(self, card: PivCard) -> None:
        self.card = card

    def execute(self, cmd: Command, data: bytes) -> bytes:
        handler = {
            INS_GET_VERSION: self._version,
            INS_GET_SERIAL: self._serial,
            INS_GET_METADATA: self._metadata,
            INS_SET_MGMKEY: self._set_management_key,
            INS_SET_PIN_RETRIES: self._set_pin_retries,
            INS_RESET: self._reset,
        }[cmd.ins]
        return handler(cmd, data)

    def _version(self, cmd: Command, data: bytes) -> bytes:
        return bytes(FIRMWARE_VERSION)

    def _serial(self, cmd: Command, data: bytes) -> bytes:
        return serial_number(self.card.serial_bytes).to_bytes(4, "big")

    def _metadata(self, cmd: Command, data: bytes) -> bytes:
        state = self.card.state
        if cmd.p1 != 0x00:
            raise StatusError(SW_INCORRECT_P1P2)
        if cmd.p2 in (_KEY_PIN, _KEY_PUK):
            is_pin = cmd.p2 == _KEY_PIN
            default = state.pin == DEFAULT_PIN if is_pin else state.puk == DEFAULT_PUK
            total = state.pin_retries if is_pin else state.puk_retries
            left = state.pin_retries_left if is_pin else state.puk_retries_left
            return (
                tlv(TAG_ALGORITHM, b"\xff")
                + tlv(TAG_POLICY, bytes([0, 0]))
                + tlv(TAG_DEFAULT, bytes([default]))
                + tlv(TAG_RETRIES, bytes([total, left]))
            )
        if cmd.p2 == _KEY_MANAGEMENT:
            default = (
                state.management_algorithm == ALG_3DES
                and state.management_key_hex.lower() == DEFAULT_MANAGEMENT_KEY
            )
            return (
                tlv(TAG_ALGORITHM, bytes([state.management_algorithm]))
                + tlv(TAG_POLICY, bytes([0, TOUCH_POLICY_NEVER]))
                + tlv(TAG_DEFAULT, bytes([default]))
            )
        record = state.keys.get(f"{cmd.p2:02x}")
        if record is None:
            raise StatusError(SW_REF_NOT_FOUND)
        return (
            tlv(TAG_ALGORITHM, bytes([record.algorithm]))
            + tlv(TAG_POLICY, bytes([self.card.pin_policy(cmd.p2), TOUCH_POLICY_NEVER]))
            + tlv(TAG_ORIGIN, bytes([ORIGIN_GENERATED]))
            + tlv(TAG_PUBLIC_KEY, self.card.public_key_template(record))
        )

    def _set_management_key(self, cmd: Command, data: bytes) -> bytes:
        if not self.card.management_authenticated:
            raise StatusError(SW_SECURITY)
        if cmd.p1 != 0xFF or cmd.p2 != 0xFF:  # P2 FE asks for touch: no touch sensor here
            raise StatusError(SW_INCORRECT_P1P2)
        if len(data) < 3 or data[1] != _KEY_MANAGEMENT:
            raise StatusError(SW_WRONG_DATA)
        algorithm, length, key = data[0], data[2], data[3:]
        if _MANAGEMENT_KEY_LENGTHS.get(algorithm) != length or len(key) != length:
            raise StatusError(SW_WRONG_DATA)
        self.card.state.management_algorithm = algorithm
        self.card.state.management_key_hex = key.hex()
        self.card.save()
        return b""

    def _set_pin_retries(self, cmd: Command, data: bytes) -> bytes:
        if not (self.card.management_authenticated and self.card.pin_verified):
            raise StatusError(SW_SECURITY)
        if not (1 <= cmd.p1 <= 15 and 1 <= cmd.p2 <= 15) or data:
            raise StatusError(SW_INCORRECT_P1P2)
        state = self.card.state
        state.pin_retries = state.pin_retries_left = cmd.p1
        state.puk_retries = state.puk_retries_left = cmd.p2
        state.pin, state.puk = DEFAULT_PIN, DEFAULT_PUK
        self.card.save()
        return b""

    def _reset(self, cmd: Command, data: bytes) -> bytes:
        state = self.card.state
        if state.pin_retries_left > 0 or state.puk_retries_left > 0:
            raise StatusError(SW_CONDITIONS)
        state.pin, state.puk = DEFAULT_PIN, DEFAULT_PUK
        state.pin_retries = state.pin_retries_left = PIN_RETRIES
        state.puk_retries = state.puk_retries_left = PUK_RETRIES
        state.management_algorithm = ALG_3DES
        state.management_key_hex = DEFAULT_MANAGEMENT_KEY
        state.keys.clear()
        state.objects.clear()
        self.card.save()
        self.card.reset()
        return b""
