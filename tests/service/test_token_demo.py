"""The tokens demo step runs end to end against a real server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from authd.demo_steps.token import TokensDemoContext, run
from simulators.certificate.ca import DemoCa
from simulators.token.softhsm import process_env


def test_demo_step_runs(server: Callable[..., Any]) -> None:
    srv = server(token={"poll_interval": 0.1, "rescan_interval": 0.1})
    lines: list[str] = []
    run(
        TokensDemoContext(
            branch_channel=srv.channel("bank-a", "branch", "teller-1"),
            backend_channel=srv.channel("bank-a", "backend", "ib-backend"),
            softhsm=process_env(),
            ca=DemoCa(),  # this server trusts no CA: its signatures go unchecked
            say=lines.append,
        )
    )
    text = "\n".join(lines)
    assert "authd reports the token inserted" in text
    assert "exempt before False, after True" in text
    assert "The backend verified the signed login challenge" in text
