"""Group commit for verifications.

A durable commit costs an fsync and a round of locking; doing one per verification caps a node
far below what it can evaluate. The engine takes whatever verifications are waiting (up to
``batch_max``), runs them one after another in a single transaction — each under its device's
row lock — and commits once. Every caller is answered only after the commit that holds its
counter change, so an acknowledged failure is never lost.

One job cannot fail another. The handler raises a project error only before it writes (a bad
request, an unknown device): that job gets the error and its batch-mates go on. Any other
failure aborts the batch's transaction, so nothing of the batch was written; the jobs are then
committed again one per transaction, and only the job that fails again gets an error (INTERNAL,
logged with a reference by whoever answers it). When the store itself failed (unreachable, I/O,
disk full) every job of the batch answers UNAVAILABLE at once: nothing was counted.

Callers that give up (deadline, cancellation, disconnect) never reach a writer. A job whose
caller gave up before a writer took it is dropped unevaluated; once taken, it is evaluated and
committed (and audited) with its batch, and only its answer is dropped.

A writer that dies anyway (an unexpected error in the engine itself) is noticed: the jobs it
held get their answers if their batch committed and UNAVAILABLE (nothing counted) if not, every
call waiting for it gets UNAVAILABLE, one line is logged, ``authd_otp_writer_failures_total``
counts it, and the writer starts again after a back-off (``restart_delay``, doubling while it
keeps failing, at most ``restart_delay_max``). Until then its calls answer UNAVAILABLE at once
and ``serving`` is False (the OTP service's health reports NOT_SERVING).

Each device (key) is served by one writer of a node, so a node evaluates one device's calls in
the order they arrived. Within a batch the items are ordered by key, so writers on several
nodes always take row locks in the same order and cannot deadlock each other.

On SQLite (``defer_sync``) a writer's commit does not wait for the disk: a syncer thread makes
every commit written so far durable with one fdatasync of the write-ahead log and only then
answers their callers, while the writer evaluates its next batch (``Database.sync``). So the
durable flush overlaps the next batch instead of stalling the writer, and is shared by every
batch committed while the previous one ran; no caller hears of a change before it is on disk.
When nothing waits for the writer and the syncer is idle, the writer syncs and answers its batch
itself: there is no next batch to overlap, and handing over would only cost a wait for the GIL.
If the sync fails, those callers are told the store could not confirm the change.

Jobs come one at a time (``submit``: a future each) or as a group (``submit_all``: one callback
with every answer once the last is settled, for a call carrying many verifications). A writer's
queue holds at most ``queue_max`` jobs: a job beyond it is answered at once with LimitReached
(reason ``BUSY``, a ``retry_after`` from the writer's recent pace), nothing counted, instead of
waiting for a writer that is already behind.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from authd import metrics
from authd.otp import stages
from authd.storage import Database, Tx
from authd.storage.database import CHECKPOINT_EVERY
from devices.errors import AuthdError, LimitReached, Unreachable

log = logging.getLogger(__name__)

J = TypeVar("J")
R = TypeVar("R")
# A job's result, or the error its caller gets.
Answer = tuple[R | None, BaseException | None]

STORE_FAILED = "the store could not record the verification; nothing was counted"
QUEUE_FULL = ("the OTP center is busy: {queued} verifications wait for this node's writer; "
              "nothing was counted; retry in {retry:.2f} s")
GAVE_UP = "the caller gave up before the verification was evaluated; nothing was counted"
NOT_DURABLE = ("the store could not confirm that the verification was recorded; it may have "
               "been counted; ask for the device's status")
WRITER_FAILED = "the verification writer failed; nothing was counted; try again"
WRITER_DOWN = "the verification writer is restarting; nothing was counted; try again"
SHUTTING_DOWN = "the server is shutting down"


class Many(Generic[J, R]):
    """A handler that evaluates a whole batch in one go: a result or the job's error for each
    (an error it returns was found before that job wrote anything)."""

    def __init__(self, handle: Callable[[Tx, Sequence[J]], list[R | AuthdError]]) -> None:
        self.handle = handle


Handler = Callable[[Tx, J], R] | Many[J, R]


def _evaluate(tx: Tx, handle: Handler[J, R], jobs: Sequence[J]) -> list[Answer[R]]:
    if isinstance(handle, Many):
        return [(None, r) if isinstance(r, AuthdError) else (r, None)
                for r in handle.handle(tx, jobs)]
    out: list[Answer[R]] = []
    for job in jobs:
        try:
            out.append((handle(tx, job), None))
        except AuthdError as exc:  # raised before the job wrote anything
            out.append((None, exc))
    return out


def commit_batch(db: Database, handle: Handler[J, R],
                 jobs: Sequence[J], pipeline: bool = True) -> list[Answer[R]]:
    """Evaluate ``jobs`` in one durable transaction: each job's result or its error.
    ``pipeline``: PostgreSQL pipeline mode (the handler reads no statement's row count).

    Raises nothing but BaseExceptions: when the transaction fails, the jobs are committed one
    per transaction (or all answered UNAVAILABLE when the store failed), as the module says."""
    try:
        answers = db.run(lambda tx: _evaluate(tx, handle, jobs), pipeline=pipeline)
    except Exception as exc:
        return after_failed_batch(db, handle, jobs, exc, pipeline)
    metrics.OTP_BATCH.observe(len(jobs))
    return answers


def _common_error(db: Database, exc: Exception) -> AuthdError | None:
    """The answer for every job when ``exc`` says the store failed, not one job's values."""
    if isinstance(exc, AuthdError):
        return exc
    if db.is_store_failure(exc):
        return Unreachable(STORE_FAILED)
    return None


def after_failed_batch(db: Database, handle: Handler[J, R], jobs: Sequence[J],
                       exc: Exception, pipeline: bool = True) -> list[Answer[R]]:
    """The answers for ``jobs`` after their batch's transaction failed with ``exc`` (rolled
    back): the store's error for all of them, or each job committed on its own."""
    common = _common_error(db, exc)
    if common is not None:
        if isinstance(exc, AuthdError):  # the store said what failed: no traceback
            log.error("verification batch of %d failed: %s", len(jobs), exc)
        else:
            log.error("verification batch of %d failed: %s", len(jobs), type(exc).__name__,
                      exc_info=exc)
        return [(None, common)] * len(jobs)
    if len(jobs) == 1:
        return [(None, exc)]
    log.warning("verification batch of %d failed (%s); committing its jobs one per transaction",
                len(jobs), type(exc).__name__)
    metrics.OTP_BATCH_SPLITS.inc()
    out: list[Answer[R]] = []
    for i, job in enumerate(jobs):
        alone: Callable[[Tx], list[Answer[R]]] = functools.partial(_evaluate, handle=handle,
                                                                   jobs=(job,))
        try:
            out.extend(db.run(alone, pipeline=pipeline))
        except Exception as one:
            common = _common_error(db, one)
            if common is not None:  # the store failed meanwhile: no point trying the rest
                log.error("verification failed: %s", one if isinstance(one, AuthdError)
                          else type(one).__name__,
                          exc_info=None if isinstance(one, AuthdError) else one)
                out.extend([(None, common)] * (len(jobs) - i))
                break
            out.append((None, one))
        else:
            metrics.OTP_BATCH.observe(1)
    return out


def _answer(future: Future[R] | asyncio.Future[R], result: R | None,
            error: BaseException | None) -> None:
    """Settle a caller's future; one that is settled already (its caller gave up) stays so."""
    if future.done():
        return
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]
    except (InvalidStateError, asyncio.InvalidStateError):
        pass  # cancelled by its caller in the meantime


class _One(Generic[R]):
    """Where one submitted job's answer goes: its caller's future."""

    __slots__ = ("future",)

    def __init__(self, future: Future[R] | asyncio.Future[R]) -> None:
        self.future = future

    def claim(self) -> bool:
        """Whether the job is still wanted (then it can no longer be cancelled)."""
        future = self.future
        if isinstance(future, Future):
            return future.set_running_or_notify_cancel()
        return not future.done()

    def settle(self, result: R | None, error: BaseException | None) -> None:
        _answer(self.future, result, error)


class Group(Generic[R]):
    """The answers of jobs submitted together, handed to ``done`` once, when the last is settled
    (on the thread that settles it). ``cancel()``: jobs no writer has taken are dropped."""

    def __init__(self, size: int, done: Callable[[list[Answer[R]]], None],
                 trace: stages.Trace | None = None) -> None:
        self.answers: list[Answer[R] | None] = [None] * size
        self.cancelled = False
        self.trace = trace  # its path, stamped by the writer and the syncer (stage timings)
        self._remaining = size
        self._lock = threading.Lock()
        self._done = done
        if size == 0:
            done([])

    def cancel(self) -> None:
        self.cancelled = True

    def settle(self, index: int, result: R | None, error: BaseException | None) -> None:
        with self._lock:
            if self.answers[index] is not None:
                return
            self.answers[index] = (result, error)
            self._remaining -= 1
            last = self._remaining == 0
        if last:
            self._done(self.answers)  # type: ignore[arg-type]  # every slot is set now


class _Member(Generic[R]):
    """Where a job of a group goes: its slot in the group."""

    __slots__ = ("group", "index")

    def __init__(self, group: Group[R], index: int) -> None:
        self.group = group
        self.index = index

    def claim(self) -> bool:
        if self.group.cancelled:
            self.group.settle(self.index, None, Unreachable(GAVE_UP))
            return False
        return True

    def settle(self, result: R | None, error: BaseException | None) -> None:
        self.group.settle(self.index, result, error)


Slot = _One[R] | _Member[R]


def _stamp(batch: Sequence[_Item[J, R]], point: str, at: float) -> None:
    """Write ``at`` as ``point`` of the trace of each group with a job in ``batch``: the last
    batch to stamp a group is the one its answers waited for (stage timings)."""
    for item in batch:
        slot = item.slot
        if isinstance(slot, _Member) and slot.group.trace is not None:
            setattr(slot.group.trace, point, at)


class _Supervision:
    """What both engines share: health listeners, the restart back-off, the fault seam."""

    def __init__(self, kind: str, restart_delay: float, restart_delay_max: float) -> None:
        self._kind = kind
        self.restart_delay = restart_delay
        self.restart_delay_max = restart_delay_max
        self.failures = 0  # writers that died, since start
        self._listeners: list[Callable[[], None]] = []
        self._faults: list[BaseException] = []
        self._faults_lock = threading.Lock()

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (from any thread) whenever ``serving`` may have changed."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            try:
                listener()
            except Exception:
                log.exception("OTP engine health listener failed")

    def fail_next_batches(self, error: BaseException, count: int = 1) -> None:
        """Test seam: the next ``count`` batches a writer takes raise ``error`` in the writer
        itself, before their transaction begins, as a bug in the engine would."""
        with self._faults_lock:
            self._faults.extend([error] * count)

    def _inject(self) -> None:
        with self._faults_lock:
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            raise fault

    def _died(self, name: str, exc: BaseException, streak: int) -> float:
        """Log and count a writer's death; returns how long to wait before restarting it."""
        self.failures += 1
        metrics.OTP_WRITER_FAILURES.labels(engine=self._kind).inc()
        delay = min(self.restart_delay * 2 ** min(streak, 30), self.restart_delay_max)
        log.error("OTP verification writer %s failed (%s); restarting it in %.2f s", name,
                  type(exc).__name__, delay, exc_info=exc)
        return delay


@dataclass
class _Item(Generic[J, R]):
    job: J
    key: str
    slot: Slot[R]
    queued: float = 0.0  # when it was queued (only with stage timings on)


@dataclass
class _Writer(Generic[J, R]):
    name: str
    queue: queue.SimpleQueue[_Item[J, R] | None] = field(default_factory=queue.SimpleQueue)
    thread: threading.Thread | None = None
    alive: bool = False
    streak: int = 0  # deaths since its last good batch (for the back-off)
    batch: list[_Item[J, R]] = field(default_factory=list)  # in flight
    answers: list[Answer[R]] | None = None  # the batch in flight's answers, once committed
    pace: float = 0.0  # seconds per job of its last batch (for retry_after)
    deferred: bool = False  # its commits wait for the syncer's sync before they are answered


# A committed batch waiting for the syncer: its items, their answers, when it was handed over.
_Committed = tuple[list[_Item[J, R]], list[Answer[R]], float]


class GroupCommitEngine(_Supervision, Generic[J, R]):
    def __init__(self, db: Database, handle: Handler[J, R], *, batch_max: int = 256,
                 writers: int = 1, name: str = "verify", restart_delay: float = 0.1,
                 restart_delay_max: float = 5.0, queue_max: int = 0,
                 defer_sync: bool = False, pipeline: bool = True) -> None:
        super().__init__("thread", restart_delay, restart_delay_max)
        self._db = db
        self._pipeline = pipeline
        self._handle = handle
        self._batch_max = batch_max
        self._queue_max = queue_max  # 0: unbounded
        self._defer_sync = defer_sync
        self._closed = False
        self._stop = threading.Event()
        self._writers: list[_Writer[J, R]] = [_Writer(f"authd-{name}-{i}")
                                              for i in range(writers)]
        self.batches = 0
        self.items = 0
        self._syncs: queue.SimpleQueue[_Committed[J, R] | None] = queue.SimpleQueue()
        self._syncing = threading.Lock()  # held by whoever syncs and settles (syncer, writer)
        self._syncer: threading.Thread | None = None
        self._checkpointer: threading.Thread | None = None
        if defer_sync:
            self._syncer = threading.Thread(target=self._sync_loop, name=f"authd-{name}-sync",
                                            daemon=True)
            self._syncer.start()
            self._checkpointer = threading.Thread(target=self._checkpoint_loop,
                                                  name=f"authd-{name}-checkpoint", daemon=True)
            self._checkpointer.start()
        for writer in self._writers:
            self._start(writer)

    @property
    def serving(self) -> bool:
        """Every writer runs: every device of this node can be verified."""
        return not self._closed and all(w.alive for w in self._writers)

    def submit(self, job: J, key: str) -> Future[R]:
        future: Future[R] = Future()
        self._put(_Item(job, key, _One(future)), bounded=True)
        return future

    def submit_all(self, jobs: Sequence[tuple[J, str]],
                   done: Callable[[list[Answer[R]]], None], *, bounded: bool = True,
                   trace: stages.Trace | None = None) -> Group[R]:
        """Submit ``(job, key)`` pairs together; ``done`` gets every answer, in their order,
        once (on a writer's thread, or here when none is queued). ``bounded=False``: the
        caller bounds what it submits itself (the native front end's link). ``trace``: the
        group's path, stamped when its batches are committed and synced (stage timings)."""
        group: Group[R] = Group(len(jobs), done, trace)
        for index, (job, key) in enumerate(jobs):
            self._put(_Item(job, key, _Member(group, index)), bounded=bounded)
        return group

    def _writer_of(self, key: str) -> _Writer[J, R]:
        return self._writers[zlib.crc32(key.encode()) % len(self._writers)]

    def _put(self, item: _Item[J, R], bounded: bool) -> None:
        writer = self._writer_of(item.key)
        if self._closed:
            item.slot.settle(None, Unreachable(SHUTTING_DOWN))
        elif not writer.alive:
            item.slot.settle(None, Unreachable(WRITER_DOWN))
        elif bounded and self._queue_max and writer.queue.qsize() >= self._queue_max:
            item.slot.settle(None, self._busy(writer))
        else:
            if stages.ON:
                item.queued = stages.now()
            writer.queue.put(item)

    def _busy(self, writer: _Writer[J, R]) -> LimitReached:
        queued = writer.queue.qsize()
        retry = min(5.0, max(0.01, queued * writer.pace))
        return LimitReached(QUEUE_FULL.format(queued=queued, retry=retry), retry_after=retry,
                            reason="BUSY", metadata={"limit": "queue_max"})

    def pace(self) -> float:
        """Seconds per verification of the slowest writer's last batch (0: none yet)."""
        return max((w.pace for w in self._writers), default=0.0)

    def backlog(self) -> tuple[int, int]:
        """Verifications in the writers' batches in flight, and those queued behind them."""
        return (sum(len(w.batch) for w in self._writers),
                sum(w.queue.qsize() for w in self._writers))

    def _start(self, writer: _Writer[J, R]) -> None:
        thread = threading.Thread(target=self._serve, args=(writer,), name=writer.name,
                                  daemon=True)
        writer.thread = thread
        writer.alive = True
        thread.start()
        self._changed()

    def _serve(self, writer: _Writer[J, R]) -> None:
        try:
            writer.deferred = self._defer_sync and self._db.defer_sync_on_this_thread()
            self._run(writer)
        except BaseException as exc:
            self._recover(writer, exc)

    def _deliver(self, writer: _Writer[J, R], batch: list[_Item[J, R]],
                 answers: list[Answer[R]]) -> None:
        """A committed batch's answers: now, or once the syncer made its commit durable."""
        if writer.deferred:
            if writer.queue.empty() and self._syncs.empty() and \
                    self._syncing.acquire(blocking=False):
                try:  # nothing to overlap: sync here, no hand-off
                    self._sync_and_settle([(batch, answers, 0.0)], "sync_inline")
                finally:
                    self._syncing.release()
                return
            self._syncs.put((batch, answers, stages.now() if stages.ON else 0.0))
            return
        for item, (result, error) in zip(batch, answers, strict=True):
            item.slot.settle(result, error)

    def _sync_loop(self) -> None:
        """One sync for every batch committed while the previous one ran, then their answers.
        If the sync fails, their callers hear that the store could not confirm the change."""
        while (first := self._syncs.get()) is not None:
            done = [first]
            stop = False
            while True:
                try:
                    following = self._syncs.get_nowait()
                except queue.Empty:
                    break
                if following is None:
                    stop = True
                    break
                done.append(following)
            with self._syncing:
                if stages.ON:
                    stages.observe("sync_wait", stages.now() - min(put for _, _, put in done))
                self._sync_and_settle(done, "sync")
            if stop:
                return

    def _sync_and_settle(self, done: list[_Committed[J, R]], stage: str) -> None:
        """One sync for the committed batches ``done``, then their answers."""
        started = stages.now() if stages.ON else 0.0
        try:
            self._db.sync()
            if stages.ON:
                stages.observe(stage, stages.now() - started)
        except Exception as exc:
            log.error("OTP verification commits could not be made durable: %s",
                      type(exc).__name__, exc_info=exc)
            metrics.OTP_WRITER_FAILURES.labels(engine="sync").inc()
            for batch, _, _ in done:
                for item in batch:
                    item.slot.settle(None, Unreachable(NOT_DURABLE))
            return
        settling = stages.now() if stages.ON else 0.0
        if stages.ON:
            for batch, _, _ in done:
                _stamp(batch, "sync_started", started)
                _stamp(batch, "synced", settling)
        for batch, answers, _ in done:
            for item, (result, error) in zip(batch, answers, strict=True):
                item.slot.settle(result, error)
        if stages.ON:
            stages.observe("settle", stages.now() - settling)

    def _checkpoint_loop(self) -> None:
        """Copy the write-ahead log into the store every ``CHECKPOINT_EVERY``, on a thread of
        its own: a checkpoint (its own writes and fsyncs, 5-20 ms on a busy disk) never holds
        the syncer, so no answer waits for one. A failed checkpoint loses nothing (the log
        keeps every commit); it is logged and tried again."""
        failing = False
        while not self._stop.wait(CHECKPOINT_EVERY):
            started = stages.now() if stages.ON else 0.0
            try:
                self._db.checkpoint()
            except Exception as exc:
                if not failing:
                    log.warning("checkpointing the store's write-ahead log failed (%s); "
                                "retrying", type(exc).__name__, exc_info=exc)
                failing = True
                continue
            failing = False
            if stages.ON:
                stages.observe("checkpoint", stages.now() - started)

    def _run(self, writer: _Writer[J, R]) -> None:
        while True:
            if not self._take(writer):
                return
            batch = writer.batch
            if not batch:
                continue
            self._inject()
            batch.sort(key=lambda it: it.key)  # stable: one device's calls keep their order
            started = time.perf_counter()
            answers = commit_batch(self._db, self._handle, [item.job for item in batch],
                                   self._pipeline)
            committed = time.perf_counter()
            writer.pace = (committed - started) / len(batch)
            if stages.ON:
                stages.observe("writer_wait", started - min(item.queued for item in batch))
                stages.observe("writer_commit", committed - started)
                _stamp(batch, "started", started)
                _stamp(batch, "committed", committed)
            writer.answers = answers
            self.batches += 1
            self.items += len(batch)
            writer.batch, writer.answers = [], None
            self._deliver(writer, batch, answers)
            writer.streak = 0

    def _take(self, writer: _Writer[J, R]) -> bool:
        """Collect the next batch in ``writer.batch`` (False: stop). Jobs whose callers gave up
        are left out; the others can no longer be cancelled."""
        q = writer.queue
        item = q.get()
        if item is None:
            return False
        writer.batch, writer.answers = [], None
        while True:
            if item.slot.claim():
                writer.batch.append(item)
            if len(writer.batch) >= self._batch_max:
                return True
            try:
                following = q.get_nowait()
            except queue.Empty:
                return True
            if following is None:
                q.put(None)  # finish this batch, then stop
                return True
            item = following

    def _recover(self, writer: _Writer[J, R], exc: BaseException) -> None:
        """On the dying writer's thread: answer what it held, then start it again."""
        writer.alive = False
        delay = self.restart_delay_max
        try:
            self._changed()
            delay = self._died(writer.name, exc, writer.streak)
            writer.streak += 1
            batch, answers = writer.batch, writer.answers
            writer.batch, writer.answers = [], None
            if answers is not None:  # committed: its callers get their answers
                self._deliver(writer, batch, answers)
            else:
                for item in batch:
                    item.slot.settle(None, Unreachable(WRITER_FAILED))
            self._refuse_waiting(writer, WRITER_FAILED)
        finally:
            if self._stop.wait(delay):
                self._refuse_waiting(writer, SHUTTING_DOWN)
            else:
                self._start(writer)

    @staticmethod
    def _refuse_waiting(writer: _Writer[J, R], message: str) -> None:
        while True:
            try:
                item = writer.queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item.slot.settle(None, Unreachable(message))

    def close(self) -> None:
        """Finish what was submitted, then stop the writers."""
        self._closed = True
        self._stop.set()
        for writer in self._writers:
            writer.queue.put(None)
        for writer in self._writers:
            while True:  # a restarted writer runs on a new thread
                thread = writer.thread
                if thread is None:
                    break
                thread.join()
                if writer.thread is thread:
                    break
        if self._syncer is not None:
            self._syncs.put(None)
            self._syncer.join()
        if self._checkpointer is not None:
            self._checkpointer.join()


class LoopCommitEngine(_Supervision, Generic[J, R]):
    """Group commit with evaluation on the event loop's own thread (SQLite, one process).

    Verifications that arrive while the loop is busy are evaluated together, on the loop, in
    one transaction; its durable commit runs on a helper thread, and while that fsync runs the
    loop serves calls and the next batch gathers. No hand-off to a writer thread per batch.
    The drain task is this engine's writer: it dies, is noticed and restarts as the module
    describes. Everything but ``close`` is called on the loop."""

    def __init__(self, db: Database, handle: Handler[J, R], *, batch_max: int = 256,
                 restart_delay: float = 0.1, restart_delay_max: float = 5.0,
                 queue_max: int = 0) -> None:
        super().__init__("loop", restart_delay, restart_delay_max)
        self._db = db
        self._handle = handle
        self._batch_max = batch_max
        self._queue_max = queue_max
        self._pending: list[_Item[J, R]] = []
        self._closed = False
        self._alive = True
        self._streak = 0
        self._batch: list[_Item[J, R]] = []
        self._answers: list[Answer[R]] | None = None
        self._pace = 0.0
        self.batches = 0
        self.items = 0
        self._task: asyncio.Task[None] | None = None
        self._committer = ThreadPoolExecutor(1, thread_name_prefix="authd-commit")

    @property
    def serving(self) -> bool:
        return self._alive and not self._closed

    def close(self) -> None:
        self._closed = True
        self._committer.shutdown(wait=True)

    def submit(self, job: J, key: str) -> asyncio.Future[R]:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._put(_Item(job, key, _One(future)), bounded=True)
        return future

    def submit_all(self, jobs: Sequence[tuple[J, str]],
                   done: Callable[[list[Answer[R]]], None], *, bounded: bool = True,
                   trace: stages.Trace | None = None) -> Group[R]:
        """As ``GroupCommitEngine.submit_all``; ``done`` runs on the loop (``trace`` is not
        stamped here: its path is the frame's reading and answering alone)."""
        group: Group[R] = Group(len(jobs), done, trace)
        for index, (job, key) in enumerate(jobs):
            self._put(_Item(job, key, _Member(group, index)), bounded=bounded)
        return group

    def pace(self) -> float:
        return self._pace

    def backlog(self) -> tuple[int, int]:
        """As ``GroupCommitEngine.backlog`` (a reading, from any thread)."""
        return len(self._batch), len(self._pending)

    def _put(self, item: _Item[J, R], bounded: bool) -> None:
        if self._closed:
            item.slot.settle(None, Unreachable(SHUTTING_DOWN))
        elif not self._alive:
            item.slot.settle(None, Unreachable(WRITER_DOWN))
        elif bounded and self._queue_max and len(self._pending) >= self._queue_max:
            queued = len(self._pending)
            retry = min(5.0, max(0.01, queued * self._pace))
            item.slot.settle(None, LimitReached(
                QUEUE_FULL.format(queued=queued, retry=retry), retry_after=retry,
                reason="BUSY", metadata={"limit": "queue_max"}))
        else:
            self._pending.append(item)
            if self._task is None:
                self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                taken = self._pending[:self._batch_max]
                self._pending = self._pending[self._batch_max:]
                # A caller that gave up before its batch formed is not evaluated.
                batch = [item for item in taken if item.slot.claim()]
                if not batch:
                    continue
                batch.sort(key=lambda item: item.key)
                self._batch, self._answers = batch, None
                self._inject()
                started = time.perf_counter()
                answers = await self._commit(loop, [item.job for item in batch])
                self._pace = (time.perf_counter() - started) / len(batch)
                self._answers = answers
                self.batches += 1
                self.items += len(batch)
                for item, (result, error) in zip(batch, answers, strict=True):
                    item.slot.settle(result, error)
                self._batch, self._answers = [], None
                self._streak = 0
        except BaseException as exc:
            self._recover(loop, exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._task = None

    async def _commit(self, loop: asyncio.AbstractEventLoop, jobs: list[J]
                      ) -> list[Answer[R]]:
        scope = self._db.transaction(pipeline=True)
        try:
            tx = scope.__enter__()
        except Exception as exc:
            return await self._after_failure(loop, jobs, exc)
        try:
            answers = _evaluate(tx, self._handle, jobs)
        except BaseException as exc:
            scope.__exit__(type(exc), exc, exc.__traceback__)  # rolls back
            if not isinstance(exc, Exception):
                raise
            return await self._after_failure(loop, jobs, exc)
        try:
            await loop.run_in_executor(self._committer, scope.__exit__, None, None, None)
        except Exception as exc:
            return await self._after_failure(loop, jobs, exc)
        metrics.OTP_BATCH.observe(len(jobs))
        return answers

    async def _after_failure(self, loop: asyncio.AbstractEventLoop, jobs: list[J],
                             exc: Exception) -> list[Answer[R]]:
        return await loop.run_in_executor(self._committer, after_failed_batch, self._db,
                                          self._handle, jobs, exc)

    def _recover(self, loop: asyncio.AbstractEventLoop, exc: BaseException) -> None:
        self._alive = False
        self._changed()
        delay = self._died("authd-loop-drain", exc, self._streak)
        self._streak += 1
        batch, answers = self._batch, self._answers
        self._batch, self._answers = [], None
        if answers is not None:
            for item, (result, error) in zip(batch, answers, strict=True):
                item.slot.settle(result, error)
        for item in batch:
            item.slot.settle(None, Unreachable(WRITER_FAILED))
        waiting, self._pending = self._pending, []
        for item in waiting:
            item.slot.settle(None, Unreachable(WRITER_FAILED))
        if not loop.is_closed():
            loop.call_later(delay, self._restart)

    def _restart(self) -> None:
        if self._closed:
            return
        self._alive = True
        self._changed()
