"""The engine's stage timings ([otp] stage_timings): the garbage collector's pauses among them."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authd.otp import stages
from authd.otp.engine import GroupCommitEngine
from authd.storage import Tx, open_database


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


def _slow_sums() -> dict[str, tuple[float, float]]:
    """``authd_otp_slow_frame_seconds``: per stage, its (_count, _sum)."""
    out: dict[str, list[float]] = {}
    for metric in stages.SLOW_FRAME_SECONDS.collect():
        for sample in metric.samples:
            stage = sample.labels.get("stage", "")
            if sample.name.endswith("_count"):
                out.setdefault(stage, [0.0, 0.0])[0] = sample.value
            elif sample.name.endswith("_sum"):
                out.setdefault(stage, [0.0, 0.0])[1] = sample.value
    return {stage: (c, s) for stage, (c, s) in out.items()}


def test_a_slow_frame_is_split_along_its_path_and_a_fast_one_is_not(timed: None) -> None:
    """A frame that reached SLOW_FRAME adds each stage of its path to the slow frames'
    histogram, the stages adding up to its time; a fast frame counts in frame_total alone."""
    before, frames = _slow_sums(), _count("frame_total")
    fast = stages.Trace(queued=0.001, wake=0.0005, read=100.0)
    fast.sent(100.002)
    assert _slow_sums() == before and _count("frame_total") == frames + 1

    slow = stages.Trace(queued=0.004, wake=0.001, read=100.0)
    slow.handed, slow.started, slow.committed = 100.0005, 100.002, 100.005
    slow.sync_started, slow.synced, slow.finished = 100.006, 100.010, 100.0105
    slow.sent(100.011)
    after = _slow_sums()
    added = {stage: after[stage][1] - before.get(stage, (0.0, 0.0))[1]
             for stage in stages.FRAME_PATH}
    assert all(after[s][0] == before.get(s, (0.0, 0.0))[0] + 1 for s in stages.FRAME_PATH)
    expected = {"front_queue": 0.004, "link_wake": 0.001, "link_read": 0.0005,
                "writer_wait": 0.0015, "writer_commit": 0.003, "sync_wait": 0.001,
                "sync": 0.004, "settle": 0.0005, "link_send_wait": 0.0005}
    assert added == pytest.approx(expected, abs=1e-9)
    assert sum(added.values()) == pytest.approx(0.004 + 0.001 + 0.011)


def test_the_writer_and_the_syncer_stamp_a_groups_path(timed: None, tmp_path: Path) -> None:
    """A group submitted with a trace: its batch's start and commit, then the sync covering
    it, stamped in that order before its answers are handed over (real SQLite, the engine's
    own threads, commits deferred to the syncer)."""
    db = open_database(f"sqlite:///{tmp_path / 'engine.db'}")
    db.run(lambda tx: tx.execute("CREATE TABLE jobs (name TEXT NOT NULL)"))

    def handle(tx: Tx, job: str) -> str:
        tx.execute("INSERT INTO jobs (name) VALUES (?)", (job,))
        return job

    engine: GroupCommitEngine[str, str] = GroupCommitEngine(db, handle, defer_sync=True)
    seen: list[tuple[list[float], float]] = []
    done = threading.Event()
    try:
        read = stages.now()
        trace = stages.Trace(queued=0.0, wake=0.0, read=read)
        trace.handed = stages.now()

        def answered(answers: list[Any]) -> None:
            seen.append(([trace.started, trace.committed, trace.sync_started, trace.synced],
                         stages.now()))
            done.set()

        engine.submit_all([("a", "serial-1"), ("b", "serial-2")], answered, bounded=False,
                          trace=trace)
        assert done.wait(30)
    finally:
        engine.close()
        db.close()
    (points, answered_at), = seen
    assert trace.handed <= points[0] <= points[1] <= points[2] <= points[3] <= answered_at
    assert all(point > read for point in points)
