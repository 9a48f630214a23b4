"""Device backends chosen by configuration, found by name among installed plug-ins.

Production code names no simulator: a feature asks for a backend by name (``hid_otp.bus``
``simulator``, ``security_card.device`` ``simulator``, ...), and the package that provides it
declares it as an entry point of the group ``authd.backends`` (see pyproject.toml), e.g.

    [project.entry-points."authd.backends"]
    "hid_otp.bus.simulator" = "simulators.hid_otp:simulated_bus"

so the simulators are a plug-in of the daemon that a deployment may leave out.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from devices.errors import BadRequest

GROUP = "authd.backends"


@functools.cache
def _installed() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def names(kind: str) -> list[str]:
    """The backend names installed for ``kind`` (e.g. ``hid_otp.bus``)."""
    prefix = kind + "."
    return sorted(name[len(prefix):] for name in _installed() if name.startswith(prefix))


def load(kind: str, name: str) -> Callable[..., Any]:
    """The factory of backend ``name`` for ``kind``; a clear error when none is installed."""
    entry = _installed().get(f"{kind}.{name}")
    if entry is None:
        have = ", ".join(names(kind)) or "none"
        raise BadRequest(f"no {kind} backend named {name!r} is installed (installed: {have})")
    factory: Callable[..., Any] = entry.load()
    return factory
