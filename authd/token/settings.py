"""The ``[token]`` section: PKCS#11 modules of customers' HSM security tokens and sessions.

```toml
[token]
modules = ["/usr/lib/softhsm/libsofthsm2.so"]      # or tables: {path = "...", rescan = "poll"}
poll_interval = 0.5            # seconds between slot-list polls (token events)
rescan_interval = 1.0          # SoftHSM2-style modules: re-initialize at most this often
session_idle_seconds = 300     # a login handle ends after this long unused
session_max_seconds = 3600     # and after this long in any case
pin_max_failures = 3           # daemon-side consecutive wrong PINs before a lock (0: token only)
max_sign_bytes = 1048576       # largest data Sign hashes itself
ignore_labels = []             # tokens never shown (the key-encryption-key token is always hidden)
inline_sign_us = 400           # Sign on the event loop while signatures take less (0: never)
lend_after_signs = 4           # native front: lend a login after this many linked Signs (0: never)
```
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from authd.config import SOFTHSM_MODULE, Config
from authd.settings import setting

Rescan = Literal["auto", "poll", "reinitialize"]


@dataclass(frozen=True)
class ModuleSetting:
    path: str
    rescan: Rescan = "auto"

    @classmethod
    def from_toml(cls, entry: Any) -> ModuleSetting:
        """A module path, or a table ``{path = "...", rescan = "auto"|"poll"|"reinitialize"}``."""
        if isinstance(entry, str) and entry and "\x00" not in entry:
            return cls(entry)
        if isinstance(entry, Mapping) and isinstance(entry.get("path"), str) and entry["path"]:
            unknown = sorted(set(entry) - {"path", "rescan"})
            if unknown:
                raise ValueError(f"unknown key(s) {', '.join(unknown)}")
            rescan = entry.get("rescan", "auto")
            if rescan not in ("auto", "poll", "reinitialize"):
                raise ValueError("rescan must be auto, poll or reinitialize")
            return cls(entry["path"], rescan)
        raise ValueError("each module is a path or {path = ..., rescan = ...}")


@dataclass(frozen=True)
class TokenSettings:
    SECTION: ClassVar[str] = "token"
    modules: tuple[ModuleSetting, ...] | None = setting(
        None, "PKCS#11 modules to load (paths or {path, rescan} tables); unset: SoftHSM2 when "
              "simulators are on, else none")
    poll_interval: float = setting(0.5, "seconds between slot-list polls (token events)")
    rescan_interval: float = setting(1.0, "SoftHSM2-style modules: re-initialize at most this "
                                          "often when idle, and for lookups of unknown serials")
    session_idle_seconds: float = setting(300.0, "a login handle ends after this long unused")
    session_max_seconds: float = setting(3600.0, "and after this long in any case")
    pin_max_failures: int = setting(3, "daemon-side consecutive wrong PINs before a lock "
                                       "(0: the token's own counter only)")
    max_sign_bytes: int = setting(1 << 20, "largest data Sign hashes itself")
    ignore_labels: frozenset[str] = setting(
        frozenset(), "token labels never shown (the key-encryption-key token always is hidden)")
    inline_sign_us: float = setting(
        400.0, "a unary Sign runs on the event loop while that login's signatures take less "
               "than this many microseconds (fast tokens: no thread hop); 0: never")
    lend_after_signs: int = setting(
        4, "behind the native front end, after this many good unary Signs of one login through "
           "it, the login is lent to the front end, which signs that caller's next common Signs "
           "on that handle itself (docs/token.md; never with a certificate check installed); "
           "0: never")

    def problems(self) -> list[str]:
        out = []
        if self.poll_interval <= 0 or self.session_idle_seconds <= 0 or self.rescan_interval <= 0:
            out.append("intervals must be positive")
        if self.session_max_seconds < self.session_idle_seconds:
            out.append("session_max_seconds must be at least session_idle_seconds")
        if self.inline_sign_us < 0:
            out.append("inline_sign_us must not be negative")
        if not 0 <= self.lend_after_signs <= 1_000_000:
            out.append("lend_after_signs must be 0..1000000")
        if self.pin_max_failures < 0 or self.max_sign_bytes <= 0:
            out.append("pin_max_failures must be >= 0 and max_sign_bytes > 0")
        return out

    def effective(self, config: Config) -> TokenSettings:
        """With what follows from the rest of the configuration: the default modules, and the
        key-encryption-key token hidden."""
        modules = self.modules
        if modules is None:
            modules = (ModuleSetting(SOFTHSM_MODULE),) if config.simulators else ()
        ignore = set(self.ignore_labels)
        if config.kek.kind == "pkcs11":
            ignore.add(config.kek.token_label)
        return dataclasses.replace(self, modules=modules, ignore_labels=frozenset(ignore))


SETTINGS = TokenSettings
