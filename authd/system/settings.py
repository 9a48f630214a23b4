"""The ``[system]`` section: the system area has no settings of its own yet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class SystemSettings:
    SECTION: ClassVar[str] = "system"


SETTINGS = SystemSettings
