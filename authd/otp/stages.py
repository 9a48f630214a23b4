"""How long verifications spend in each stage of the engine, for benchmarks.

Off unless ``[otp] stage_timings`` is on; then ``authd_otp_stage_seconds{stage}`` holds a
histogram per stage, observed once per frame or batch (not per verification), and every
collection of Python's garbage collector is timed too. Off, a stage costs one test of
``ON`` where it would be observed. The stages, in the order a verification of the native
front end's link meets them:

- ``front_queue``: the front end held the frame's oldest call before sending it;
- ``link_wake``: the frame, sent by the front end, waited for the link's reader to take it (the
  socket, the reader's wake-up and its wait for the GIL);
- ``link_read``: the link's reader decoding a frame, checking its calls and handing them over;
- ``writer_wait``: the oldest verification of a batch waited for its writer;
- ``writer_commit``: the writer evaluating and committing the batch (without its sync);
- ``sync_wait``: the committed batch waited for the syncer;
- ``sync``: the syncer's one fdatasync for every batch committed so far;
- ``settle``: the syncer handing the answers to their callers;
- ``checkpoint``: copying the write-ahead log into the store (off the answers' path);
- ``link_send_wait``: a frame's answers, complete, waited to be sent back;
- ``link_total``: a frame from its decoding to its answers sent (the daemon's share);
- ``frame_total``: a frame from its oldest call's arrival in the front end to its answers sent
  (``front_queue`` + ``link_wake`` + ``link_total``);
- ``gc``: one collection of the garbage collector's young generations (it holds every Python
  thread); ``gc_full``: one full collection (the oldest generation too).

The tail has its own histogram, ``authd_otp_slow_frame_seconds{stage}``: for every frame whose
``frame_total`` reached ``SLOW_FRAME`` (the 10 ms of the p99 target), how long that frame spent
in each stage on its own path — its verifications of the last batch it was in, that batch's
sync (``Trace``). Each stage's ``_sum`` over the slow frames' ``_count`` is what that stage
added, on average, to a frame that broke the target; the stages of one frame add up to its
``frame_total``.
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

STAGES = ("front_queue", "link_wake", "link_read", "writer_wait", "writer_commit", "sync_wait",
          "sync", "sync_inline", "settle", "checkpoint", "link_send_wait", "link_total",
          "frame_total", "gc", "gc_full")

SLOW_FRAME = 0.010  # a frame this slow (frame_total) is decomposed in SLOW_FRAME_SECONDS
# The stages of one frame's own path, in their order; they add up to its frame_total.
FRAME_PATH = ("front_queue", "link_wake", "link_read", "writer_wait", "writer_commit",
              "sync_wait", "sync", "settle", "link_send_wait")

SLOW_FRAME_SECONDS = Histogram("authd_otp_slow_frame_seconds",
                               "for the link frames slower than 10 ms from their oldest call's "
                               "arrival to their answers sent, seconds each spent in each stage "
                               "of its own path ([otp] stage_timings)", ("stage",),
                               buckets=BUCKETS, registry=metrics.REGISTRY)

ON = False
now = time.perf_counter
_gc_started = 0.0
# Each stage's histogram child, looked up once: ``labels()`` takes the metric's lock, and a
# collection can start inside it (creating a child allocates), on the same thread; had the
# collector's callback called ``labels()`` there, that thread would wait for itself for ever
# (the daemon hung, its metrics and its shutdown with it).
_CHILDREN: dict[str, Any] = {}
_SLOW: dict[str, Any] = {}


class Trace:
    """When one link frame passed each point of its path (``now()``; 0: not reached). The
    engine writes the stamps of the last batch holding one of the frame's verifications: on
    one writer that batch, and its sync, are the frame's last."""

    __slots__ = ("committed", "finished", "handed", "queued", "read", "started", "sync_started",
                 "synced", "wake")

    def __init__(self, queued: float, wake: float, read: float) -> None:
        self.queued = queued  # the front end held its oldest call (seconds)
        self.wake = wake  # sent by the front end until its reader took it (seconds)
        self.read = read
        self.handed = read
        self.started = self.committed = self.sync_started = self.synced = 0.0
        self.finished = 0.0

    def sent(self, at: float) -> None:
        """The frame's answers are sent: observe its total, and its path if it was slow."""
        total = self.queued + self.wake + (at - self.read)
        _CHILDREN["frame_total"].observe(total)
        if total < SLOW_FRAME:
            return
        started = self.started or self.handed  # nothing went to the engine: no batch
        committed = self.committed or started
        sync_started = self.sync_started or committed  # no sync of its own (PostgreSQL)
        synced = self.synced or sync_started
        finished = self.finished or synced
        for stage, seconds in zip(FRAME_PATH, (
                self.queued, self.wake, self.handed - self.read, started - self.handed,
                committed - started, sync_started - committed, synced - sync_started,
                finished - synced, at - finished), strict=True):
            _SLOW[stage].observe(max(0.0, seconds))


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
        for stage in FRAME_PATH:
            _SLOW[stage] = SLOW_FRAME_SECONDS.labels(stage=stage)
        ON = True
        gc.callbacks.append(_gc_timer)
