"""Printer Job Language (PJL) status lines, as raw-port embossers and printers send them.

After a job the device answers ``@PJL USTATUS JOB`` followed by ``CODE=``,
``DISPLAY=``, ``ONLINE=`` and ``PAGES=`` lines.  Status codes follow the PJL
groups: 10xxx informational (ready), 40xxx operator intervention, 41xxx paper
out / load paper, 42xxx paper jam.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.embosser.errors import EmbosserFault, EmbosserOffline, PaperJam, PaperOut

UEL = b"\x1b%-12345X"
STATUS_QUERY = UEL + b"@PJL INFO STATUS\r\n" + UEL

CODE_READY = 10001
CODE_OFFLINE = 10002
CODE_PAPER_OUT = 41000
CODE_PAPER_JAM = 42000
CODE_DOOR_OPEN = 40021


@dataclass(frozen=True)
class DeviceStatus:
    code: int
    display: str
    online: bool
    pages: int = 0

    @property
    def ready(self) -> bool:
        return self.online and 10000 <= self.code < 11000

    def to_bytes(self, kind: str = "JOB") -> bytes:
        head = f"@PJL USTATUS {kind}" if kind != "INFO" else "@PJL INFO STATUS"
        return (
            f"{head}\r\nCODE={self.code}\r\nDISPLAY=\"{self.display}\"\r\n"
            f"ONLINE={'TRUE' if self.online else 'FALSE'}\r\nPAGES={self.pages}\r\n\f"
        ).encode("ascii")


def parse_status(data: bytes) -> DeviceStatus | None:
    """The last status block in ``data``; ``None`` when the device said nothing usable."""
    text = data.decode("ascii", "replace")
    code: int | None = None
    display = ""
    online = True
    pages = 0
    for raw in text.replace("\f", "\n").splitlines():
        line = raw.strip()
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key = key.strip().upper()
        value = value.strip()
        if key == "CODE" and value.isdigit():
            code = int(value)
        elif key == "DISPLAY":
            display = value.strip('"')
        elif key == "ONLINE":
            online = value.upper() == "TRUE"
        elif key == "PAGES" and value.isdigit():
            pages = int(value)
    if code is None:
        return None
    return DeviceStatus(code=code, display=display, online=online, pages=pages)


def raise_for_status(status: DeviceStatus) -> None:
    """Turn a fault status into the matching error."""
    if status.ready:
        return
    if not status.online:
        raise EmbosserOffline(f"device is offline ({status.display or status.code})")
    group = status.code // 1000
    if group == 41:
        raise PaperOut(f"paper out ({status.display or status.code})", status.code, status.display)
    if group == 42:
        raise PaperJam(f"paper jam ({status.display or status.code})", status.code, status.display)
    raise EmbosserFault(
        f"device reports status {status.code} ({status.display or 'no text'})",
        status.code,
        status.display,
    )
