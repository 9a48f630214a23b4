"""A software braille embosser on a loopback raw port."""

from __future__ import annotations

from simulators.security_card.embosser.simulator import (
    EmbossedJob,
    EmbosserSimulator,
    Fault,
    fetch_last_job,
)

__all__ = ["EmbossedJob", "EmbosserSimulator", "Fault", "fetch_last_job", "started"]


def started() -> EmbosserSimulator:
    """The ``security_card.device`` backend ``simulator``: a running embosser simulator."""
    return EmbosserSimulator().start()
