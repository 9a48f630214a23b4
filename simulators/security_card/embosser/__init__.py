"""A software braille embosser on a loopback raw port."""

from __future__ import annotations

from simulators.security_card.embosser.simulator import (
    EmbossedJob,
    EmbosserSimulator,
    Fault,
)

__all__ = ["EmbossedJob", "EmbosserSimulator", "Fault", "started"]


def started() -> EmbosserSimulator:
    """The ``security_card.device`` backend ``simulator``: a running embosser simulator."""
    return EmbosserSimulator().start()
