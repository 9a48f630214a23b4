"""The HID demo step runs end to end against a real daemon."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from authd.demo_steps.hid_otp import DemoContext, run


def test_demo_step(server: Callable[..., Any]) -> None:
    srv = server(hid_otp={"monitor_interval": 0})
    lines: list[str] = []
    ctx = DemoContext(
        branch_channel=srv.channel("bank-a", "branch", "branch-gangnam"),
        backend_channels={n: srv.channel(n, "backend", "ib") for n in ("bank-a", "bank-b")},
        say=lines.append,
    )
    run(ctx)
    text = "\n".join(lines)
    assert "bank-a says ACCEPTED" in text and "bank-b says ACCEPTED" in text
    assert "IDENTIFIED" in text
