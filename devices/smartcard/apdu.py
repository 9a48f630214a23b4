"""ISO 7816-4 command APDUs over a `SmartCardConnection`.

Encodes short and extended length, splits long commands with command chaining (CLA bit
0x10), follows response chaining (61xx + GET RESPONSE) and retries with the card's Le on
6Cxx. Status words other than 9000 become errors (`devices.smartcard.errors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, unique
from typing import Protocol

from devices.smartcard.errors import ApduError, CommandTooLongError, error_for_sw

SW_OK = 0x9000
INS_GET_RESPONSE = 0xC0
CLA_CHAINING = 0x10
SHORT_MAX_DATA = 255
SHORT_MAX_LE = 256
EXTENDED_MAX_DATA = 65535
EXTENDED_MAX_LE = 65536
MAX_RESPONSE = 1 << 20  # guard against a card that never stops answering 61xx


class SmartCardConnection(Protocol):
    """The seam to a card: one command APDU in, (response data, status word) out."""

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]: ...


@unique
class ApduFormat(IntEnum):
    SHORT = 1  # long commands are chained, long answers come with 61xx
    EXTENDED = 2  # long commands and answers use extended length fields


@dataclass(frozen=True)
class CommandApdu:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int = 0  # 0: no Le field; 1..65536: the maximum expected response length

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            if not 0 <= getattr(self, name) <= 0xFF:
                raise CommandTooLongError(f"{name.upper()} must be a byte")
        if not 0 <= self.le <= EXTENDED_MAX_LE:
            raise CommandTooLongError("Le must be between 0 and 65536")
        if len(self.data) > EXTENDED_MAX_DATA:
            raise CommandTooLongError("command data longer than 65535 bytes")

    @property
    def needs_extended(self) -> bool:
        return len(self.data) > SHORT_MAX_DATA or self.le > SHORT_MAX_LE

    def encode(self, extended: bool | None = None) -> bytes:
        """The APDU bytes; `extended=None` picks extended only when the lengths need it."""
        use_extended = self.needs_extended if extended is None else extended
        if not use_extended and self.needs_extended:
            raise CommandTooLongError("command needs extended length (or chaining)")
        header = bytes([self.cla, self.ins, self.p1, self.p2])
        body = b""
        if use_extended:
            if self.data:
                body = b"\x00" + len(self.data).to_bytes(2, "big") + self.data
            if self.le:
                le = (self.le & 0xFFFF).to_bytes(2, "big")
                body += le if self.data else b"\x00" + le
        else:
            if self.data:
                body = bytes([len(self.data)]) + self.data
            if self.le:
                body += bytes([self.le & 0xFF])
        return header + body

    def __bytes__(self) -> bytes:
        return self.encode()


def parse_response(response: bytes) -> tuple[bytes, int]:
    if len(response) < 2:
        raise ApduError(b"", 0, "the card's answer has no status word")
    return response[:-2], int.from_bytes(response[-2:], "big")


class ApduProcessor:
    """Sends commands with chaining and response chaining; raises on failing status words."""

    def __init__(
        self, connection: SmartCardConnection, apdu_format: ApduFormat = ApduFormat.SHORT
    ) -> None:
        self.connection = connection
        self.apdu_format = apdu_format

    def transceive(self, command: CommandApdu) -> tuple[bytes, int]:
        """Send one logical command; returns the whole answer and the final status word."""
        if self.apdu_format is ApduFormat.EXTENDED:
            if command.le == SHORT_MAX_LE:  # "everything": one extended answer instead of 61xx
                command = CommandApdu(
                    command.cla, command.ins, command.p1, command.p2, command.data, EXTENDED_MAX_LE
                )
            data, sw = self._exchange(command, extended=True)
        else:
            data, sw = self._send_chained(command)
        return self._collect(command, data, sw)

    def send(
        self,
        cla: int,
        ins: int,
        p1: int,
        p2: int,
        data: bytes = b"",
        le: int = SHORT_MAX_LE,
        *,
        what: str = "PIN",
    ) -> bytes:
        """Send and return the response data; any status other than 9000 raises."""
        response, sw = self.transceive(CommandApdu(cla, ins, p1, p2, data, le))
        if sw != SW_OK:
            raise error_for_sw(response, sw, what)
        return response

    def _exchange(self, command: CommandApdu, extended: bool) -> tuple[bytes, int]:
        data, sw = self.connection.send_and_receive(command.encode(extended))
        if sw >> 8 == 0x6C:  # wrong Le: the card tells the right one, send again
            retry = CommandApdu(
                command.cla, command.ins, command.p1, command.p2, command.data, sw & 0xFF or 256
            )
            data, sw = self.connection.send_and_receive(retry.encode(extended))
        return data, sw

    def _send_chained(self, command: CommandApdu) -> tuple[bytes, int]:
        payload = command.data
        le = min(command.le, SHORT_MAX_LE)
        while len(payload) > SHORT_MAX_DATA:
            chunk, payload = payload[:SHORT_MAX_DATA], payload[SHORT_MAX_DATA:]
            part = CommandApdu(
                command.cla | CLA_CHAINING, command.ins, command.p1, command.p2, chunk
            )
            data, sw = self.connection.send_and_receive(part.encode(False))
            if sw != SW_OK:
                return data, sw
        last = CommandApdu(command.cla, command.ins, command.p1, command.p2, payload, le)
        return self._exchange(last, extended=False)

    def _collect(self, command: CommandApdu, data: bytes, sw: int) -> tuple[bytes, int]:
        if sw >> 8 != 0x61:
            return data, sw
        buffer = bytearray(data)
        while sw >> 8 == 0x61:
            if len(buffer) > MAX_RESPONSE:
                raise ApduError(bytes(buffer[:0]), sw, "the card's answer is too long")
            get = CommandApdu(
                command.cla & ~CLA_CHAINING & 0xFF, INS_GET_RESPONSE, 0, 0, b"", sw & 0xFF or 256
            )
            data, sw = self.connection.send_and_receive(get.encode(False))
            if sw >> 8 == 0x6C:
                get = CommandApdu(get.cla, get.ins, 0, 0, b"", sw & 0xFF or 256)
                data, sw = self.connection.send_and_receive(get.encode(False))
            buffer.extend(data)
        return bytes(buffer), sw
