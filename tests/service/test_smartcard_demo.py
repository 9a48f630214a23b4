"""The demo step runs against a real daemon and the virtual card."""
# ruff: noqa: F811  (pytest fixtures imported from tests.pcsc_env are used as arguments)

from __future__ import annotations

from pathlib import Path
from typing import Any

from authd.demo_steps.smartcard import SmartcardDemoContext, run
from tests.pcsc_env import Pcscd, pcscd, running_pcscd  # noqa: F401  (fixtures)


def test_demo_step(server: Any, running_pcscd: Pcscd, tmp_path: Path) -> None:
    lines: list[str] = []
    srv = server()
    run(SmartcardDemoContext(srv.channel("bank-a", "branch", "teller-1"), lines.append, tmp_path,
                             running_pcscd.port(0)))
    text = "\n".join(lines)
    assert "applets: PIV" in text and "WRONG, 2 attempts left" in text
    assert "signature verifies" in text and "PIN attempts back to 3" in text
