"""How often the daemon's Python threads hand the interpreter's lock to each other.

A thread that wants the GIL while another runs Python waits until that one lets it go: at a
blocking call (``recv``, a SQLite step, ``fdatasync``), or when the holder has run for the
switch interval and is asked to drop it. CPython's default interval is 5 ms, so a thread woken
with work (the engine link's reader with a frame, the syncer after its ``fdatasync``) can wait
up to 5 ms behind the writer evaluating a batch, and under load those waits add up along a
frame's path (reader, writer, syncer) into the tail of every answer. ``[server]
switch_interval_ms`` sets it for the daemon (docs/otp.md, "The switch interval").
"""

from __future__ import annotations

import sys

from prometheus_client import Gauge

from authd import metrics

SWITCH_INTERVAL = Gauge("authd_switch_interval_seconds",
                        "how long a Python thread of the daemon keeps the interpreter's lock "
                        "while another waits for it ([server] switch_interval_ms)",
                        registry=metrics.REGISTRY)


def set_switch_interval(ms: float) -> None:
    sys.setswitchinterval(ms / 1000)
    SWITCH_INTERVAL.set(sys.getswitchinterval())
