"""The ``[system]`` section: how the node watches its own store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from authd.settings import setting


@dataclass(frozen=True)
class SystemSettings:
    SECTION: ClassVar[str] = "system"
    store_check_interval: float = setting(
        5.0, "seconds between probes of the store; while it does not answer, every service "
             "of the node reports NOT_SERVING (0: no probes)")
    store_check_timeout: float = setting(
        5.0, "seconds a probe of the store may take before the store counts as down")

    def problems(self) -> list[str]:
        out = []
        if self.store_check_interval < 0:
            out.append("store_check_interval must not be negative")
        if not 0 < self.store_check_timeout <= 300:
            out.append("store_check_timeout must be in (0, 300]")
        return out


SETTINGS = SystemSettings
