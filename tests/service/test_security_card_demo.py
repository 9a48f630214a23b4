"""The demo step runs against a real daemon and embosser simulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from authd.demo_steps.security_card import SecurityCardDemoContext, run
from simulators.security_card.embosser import EmbosserSimulator


def test_demo_step(server: Callable[..., Any]) -> None:
    with EmbosserSimulator() as embosser:
        srv = server(security_card={"embosser": embosser.address})
        said: list[str] = []
        ctx = SecurityCardDemoContext(srv.channel("bank-a", "branch", "teller-1"),
                                      srv.channel("bank-a", "backend", "ib-1"), said.append,
                                      embosser)
        run(ctx)
        run(ctx)  # again: the card is replaced, the new one works
        text = "\n".join(said)
        assert "ACCEPTED" in text and "CHALLENGE_USED" in text
        assert "exempt from additional authentication = True" in text
        assert len(embosser.jobs) == 2
