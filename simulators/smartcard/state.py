"""Persistent state of one virtual PIV card, kept in a JSON file per card.

The file holds the card's PIN, PUK, management key and private keys: it is the card's
"chip memory". Nothing from it is ever logged.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_PIN = "123456"
DEFAULT_PUK = "12345678"
DEFAULT_MANAGEMENT_KEY = "010203040506070801020304050607080102030405060708"
ALG_3DES = 0x03
PIN_RETRIES = 3
PUK_RETRIES = 3

# ATR: T=1, historical bytes spell "authdPIV" so no other card driver claims it by ATR.
_HISTORICAL = b"authdPIV"


def default_atr() -> bytes:
    body = bytes([0x80 | len(_HISTORICAL), 0x80, 0x01]) + _HISTORICAL
    tck = 0
    for b in body:
        tck ^= b
    return bytes([0x3B]) + body + bytes([tck])


@dataclass
class KeyRecord:
    algorithm: int
    pkcs8_hex: str


@dataclass
class CardState:
    """Everything the card remembers across power cycles and insertions."""

    serial: str
    atr_hex: str
    pin: str = DEFAULT_PIN
    puk: str = DEFAULT_PUK
    pin_retries: int = PIN_RETRIES
    pin_retries_left: int = PIN_RETRIES
    puk_retries: int = PUK_RETRIES
    puk_retries_left: int = PUK_RETRIES
    management_key_hex: str = DEFAULT_MANAGEMENT_KEY
    management_algorithm: int = ALG_3DES
    objects: dict[str, str] = field(default_factory=dict)  # tag hex -> object bytes hex
    keys: dict[str, KeyRecord] = field(default_factory=dict)  # slot hex -> key

    @classmethod
    def new(
        cls, serial: str | None = None, pin: str = DEFAULT_PIN, puk: str = DEFAULT_PUK
    ) -> CardState:
        return cls(
            serial=serial or secrets.token_hex(8), atr_hex=default_atr().hex(), pin=pin, puk=puk
        )

    @classmethod
    def load(cls, path: Path) -> CardState:
        raw = json.loads(path.read_text())
        raw["keys"] = {slot: KeyRecord(**record) for slot, record in raw.get("keys", {}).items()}
        return cls(**raw)

    @classmethod
    def load_or_create(cls, path: Path, **kwargs: str) -> CardState:
        if path.exists():
            return cls.load(path)
        state = cls.new(**kwargs)
        state.save(path)
        return state

    def save(self, path: Path) -> None:
        """Atomic replace, so a crash never leaves a half-written card."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".card-", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(asdict(self), out)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __repr__(self) -> str:  # never show secrets
        keys, objects = sorted(self.keys), sorted(self.objects)
        return f"CardState(serial={self.serial!r}, keys={keys}, objects={objects})"
