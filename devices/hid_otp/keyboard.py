"""What an OTP device types: HID boot-keyboard input reports (usage page 0x07).

A touch makes the device type its code as key-down / key-up report pairs; the host's
keyboard layer turns the usage ids back into characters (US layout).
"""

from __future__ import annotations

KEYBOARD_REPORT_SIZE = 8  # modifiers, reserved, six key slots
MOD_LEFT_SHIFT = 0x02
_SHIFT_MASK = 0x22  # left or right shift

_BASE: dict[str, int] = {chr(ord("a") + i): 0x04 + i for i in range(26)}
_BASE.update({str(d): 0x1E + (d - 1) for d in range(1, 10)})
_BASE.update({"0": 0x27, "\n": 0x28, "\t": 0x2B, " ": 0x2C, "-": 0x2D})
_USAGE_TO_CHAR = {usage: char for char, usage in _BASE.items()}
RELEASE_REPORT = bytes(KEYBOARD_REPORT_SIZE)


def key_report(char: str) -> bytes:
    """The key-down report typing ``char``."""
    if char in _BASE:
        return bytes([0, 0, _BASE[char], 0, 0, 0, 0, 0])
    lower = char.lower()
    if char.isupper() and lower in _BASE:
        return bytes([MOD_LEFT_SHIFT, 0, _BASE[lower], 0, 0, 0, 0, 0])
    raise ValueError(f"cannot type {char!r}")


def encode_keystrokes(text: str) -> list[bytes]:
    """Key-down and key-up reports typing ``text``."""
    reports: list[bytes] = []
    for char in text:
        reports.append(key_report(char))
        reports.append(RELEASE_REPORT)
    return reports


class KeystrokeDecoder:
    """Turns a stream of keyboard reports into text: a key counts when it goes down."""

    def __init__(self) -> None:
        self._held: set[int] = set()

    def feed(self, report: bytes) -> str:
        if len(report) != KEYBOARD_REPORT_SIZE:
            return ""
        shift = bool(report[0] & _SHIFT_MASK)
        keys = {k for k in report[2:] if k}
        pressed = [k for k in report[2:] if k and k not in self._held]
        self._held = keys
        out = []
        for usage in pressed:
            char = _USAGE_TO_CHAR.get(usage)
            if char is not None:
                out.append(char.upper() if shift else char)
        return "".join(out)
