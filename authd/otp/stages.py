"""How long verifications spend in each stage of the engine, for benchmarks.

Off unless ``[otp] stage_timings`` is on; then ``authd_otp_stage_seconds{stage}`` holds a
histogram per stage, observed once per frame or batch (not per verification), and every
collection of Python's garbage collector is timed too. Off, a stage costs one test of
``ON`` where it would be observed. The stages, in the order a verification of the native
front end's link meets them:

- ``front_queue``: the front end held the frame's oldest call before sending it;
- ``link_read``: the link's reader decoding a frame, checking its calls and handing them over;
- ``writer_wait``: the oldest verification of a batch waited for its writer;
- ``writer_commit``: the writer evaluating and committing the batch (without its sync);
- ``sync_wait``: the committed batch waited for the syncer;
- ``sync``: the syncer's one fdatasync for every batch committed so far;
- ``settle``: the syncer handing the answers to their callers;
- ``checkpoint``: copying the write-ahead log into the store (off the answers' path);
- ``link_send_wait``: a frame's answers, complete, waited to be sent back;
- ``link_total``: a frame from its decoding to its answers sent (the daemon's share);
- ``gc``: one collection of the garbage collector's young generations (it holds every Python
  thread); ``gc_full``: one full collection (the oldest generation too).
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import Histogram

from authd import metrics

BUCKETS = (0.00005, 0.0001, 0.0002, 0.0003, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003,
           0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 1.0)

STAGE_SECONDS = Histogram("authd_otp_stage_seconds",
                          "seconds a frame or batch of verifications spent in each stage of "
                          "the engine ([otp] stage_timings)", ("stage",), buckets=BUCKETS,
                          registry=metrics.REGISTRY)

STAGES = ("front_queue", "link_read", "writer_wait", "writer_commit", "sync_wait", "sync",
          "sync_inline", "settle", "checkpoint", "link_send_wait", "link_total", "gc", "gc_full")

ON = False
now = time.perf_counter
_gc_started = 0.0
# Each stage's histogram child, looked up once: ``labels()`` takes the metric's lock, and a
# collection can start inside it (creating a child allocates), on the same thread; had the
# collector's callback called ``labels()`` there, that thread would wait for itself for ever
# (the daemon hung, its metrics and its shutdown with it).
_CHILDREN: dict[str, Any] = {}


def observe(stage: str, seconds: float) -> None:
    _CHILDREN[stage].observe(seconds)


def _gc_timer(phase: str, info: dict[str, Any]) -> None:
    global _gc_started
    if phase == "start":
        _gc_started = now()
    else:
        _CHILDREN["gc_full" if info.get("generation") == 2 else "gc"].observe(
            now() - _gc_started)


def enable() -> None:
    """Record every stage from now on (the benchmark's setting)."""
    global ON
    if not ON:
        for stage in STAGES:
            _CHILDREN[stage] = STAGE_SECONDS.labels(stage=stage)
        ON = True
        gc.callbacks.append(_gc_timer)
