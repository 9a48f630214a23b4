"""The stage timings tell a full collection of the garbage collector from a young one."""

from __future__ import annotations

import gc

from authd.otp import stages


def _count(stage: str) -> float:
    for metric in stages.STAGE_SECONDS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels.get("stage") == stage:
                return sample.value
    return 0.0


def test_full_and_young_collections_are_timed_apart() -> None:
    was_on = stages.ON
    stages.enable()
    try:
        full, young = _count("gc_full"), _count("gc")
        gc.collect(2)
        assert (_count("gc_full"), _count("gc")) == (full + 1, young)
        gc.collect(0)
        assert (_count("gc_full"), _count("gc")) == (full + 1, young + 1)
    finally:
        if not was_on:
            stages.ON = False
            gc.callbacks.remove(stages._gc_timer)
