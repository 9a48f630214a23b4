"""The ``[token]`` configuration section.

```toml
[token]
modules = ["/usr/lib/softhsm/libsofthsm2.so"]      # or tables: {path = "...", rescan = "poll"}
poll_interval = 0.5            # seconds between slot-list polls (token events)
rescan_interval = 1.0          # SoftHSM2-style modules: re-initialize at most this often, when idle
session_idle_seconds = 300     # a login handle ends after this long unused
session_max_seconds = 3600     # and after this long in any case
pin_max_failures = 3           # daemon-side consecutive wrong PINs before a lock (0: token only)
max_sign_bytes = 1048576       # largest data Sign hashes itself
inline_sign_us = 400           # Sign on the event loop while signatures take less (0: never)
ignore_labels = []             # tokens never shown (the key-encryption-key token is always hidden)
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from authd.config import SOFTHSM_MODULE, Config
from devices.errors import InvalidArgument


@dataclass(frozen=True)
class ModuleSetting:
    path: str
    rescan: str = "auto"


@dataclass(frozen=True)
class TokenSettings:
    modules: tuple[ModuleSetting, ...] = field(default_factory=tuple)
    poll_interval: float = 0.5
    rescan_interval: float = 1.0
    session_idle_seconds: float = 300.0
    session_max_seconds: float = 3600.0
    pin_max_failures: int = 3
    max_sign_bytes: int = 1 << 20
    inline_sign_us: float = 400.0
    ignore_labels: frozenset[str] = frozenset()


def _module(entry: Any) -> ModuleSetting:
    if isinstance(entry, str) and entry:
        return ModuleSetting(entry)
    if isinstance(entry, Mapping) and isinstance(entry.get("path"), str):
        rescan = str(entry.get("rescan", "auto"))
        if rescan not in ("auto", "poll", "reinitialize"):
            raise InvalidArgument("[token] modules: rescan must be auto, poll or reinitialize")
        return ModuleSetting(entry["path"], rescan)
    raise InvalidArgument("[token] modules: each entry is a path or {path = ..., rescan = ...}")


def load_settings(config: Config) -> TokenSettings:
    raw = dict(config.section("token"))
    known = {f for f in TokenSettings.__dataclass_fields__}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise InvalidArgument(f"unknown setting(s) in [token]: {', '.join(unknown)}")
    entries = raw.pop("modules", None)
    if entries is None:
        entries = [SOFTHSM_MODULE] if config.simulators else []
    if not isinstance(entries, list):
        raise InvalidArgument("[token] modules must be a list")
    ignore = set(raw.pop("ignore_labels", []) or [])
    if config.kek.kind == "pkcs11":
        ignore.add(config.kek.token_label)
    try:
        settings = TokenSettings(
            modules=tuple(_module(e) for e in entries),
            ignore_labels=frozenset(str(x) for x in ignore),
            **{k: type(getattr(TokenSettings(), k))(v) for k, v in raw.items()},
        )
    except (TypeError, ValueError):
        raise InvalidArgument("bad [token] section: check the value types") from None
    if settings.poll_interval <= 0 or settings.session_idle_seconds <= 0:
        raise InvalidArgument("[token] intervals must be positive")
    if settings.pin_max_failures < 0 or settings.max_sign_bytes <= 0:
        raise InvalidArgument("[token] pin_max_failures >= 0 and max_sign_bytes > 0")
    return settings
