"""The engine's stage timings ([otp] stage_timings): the garbage collector's pauses among them."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from authd.otp import stages


def _count(stage: str) -> float:
    for metric in stages.STAGE_SECONDS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels.get("stage") == stage:
                return float(sample.value)
    return 0.0


@pytest.fixture
def timed() -> Iterator[None]:
    was_on = stages.ON
    stages.enable()
    yield
    if not was_on:
        stages.ON = False
        gc.callbacks.remove(stages._gc_timer)


def test_full_and_young_collections_are_timed_apart(timed: None) -> None:
    full = _count("gc_full")
    gc.collect(2)
    assert _count("gc_full") == full + 1
    young = _count("gc")
    gc.collect(0)  # (the metrics' reading may start young collections of its own)
    assert _count("gc_full") == full + 1 and _count("gc") >= young + 1


class _Watched:
    """The metric's lock, counting who takes it."""

    def __init__(self, lock: Any) -> None:
        self.lock = lock
        self.taken = 0

    def __enter__(self) -> None:
        self.taken += 1
        self.lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


def test_a_collection_times_itself_without_the_metric_lock(
        timed: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A collection can start while its thread holds the metric's lock (``labels()`` creating
    a child); its timing must not take that lock again, or the thread waits for itself."""
    young = _count("gc")
    watched = _Watched(threading.Lock())
    monkeypatch.setattr(stages.STAGE_SECONDS, "_lock", watched)
    gc.collect(0)
    stages.observe("writer_commit", 0.001)
    taken = watched.taken
    monkeypatch.undo()
    assert taken == 0
    assert _count("gc") >= young + 1
