"""SignStream over the native front end's call link (authd/call_link.py): the same answers as
``TokenServicer.SignStream`` — signatures in order, the stream ending at its first error with
that error — without the daemon's gRPC server. Requests waiting to be signed go to a worker
together (up to ``STREAM_BATCH`` in one hop; those of one read of the link start together, at
its ``settle``), in up to ``STREAM_LANES`` batches at once; each
signature goes through ``TokenService.sign`` as a unary one does, so a token's session use
and locking are the same."""

from __future__ import annotations

import collections
import contextvars
import threading
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from authd.call_link import Answer, StreamOut, answers_held
from authd.context import Caller
from authd.token import convert
from authd.token.service import SignJob, TokenService
from authd.v1 import token_pb2 as pb
from devices.errors import BadRequest
from devices.token.token import Signature

STREAM_BATCH = 16  # signatures of one stream signed in one hop to a worker
STREAM_LANES = 2  # batches of one stream signed at once (pooled sessions in parallel)
SIGN_LANES = 2  # batches of fast unary Signs signed at once


class LinkedSigns:
    """Linked unary Signs that could not be signed on the link's thread alone (they came with
    others, or their token is not fast enough): a call on a token that signs fast (under
    ``inline_sign_us``) waits with the others, and the waiting calls are signed
    ``STREAM_BATCH`` at a time — one leased session per run of the same login and key
    (``TokenService.sign_each``: each call checked on its own, one's error answering only it)
    — and answered in one frame: the calls of one read of the link on the link's thread when
    no worker is signing (``settle``), else by up to ``SIGN_LANES`` workers. A call on a slow
    or unmeasured token goes to a worker of its own, so it holds up no other token's calls."""

    def __init__(self, service: TokenService, executor: Executor) -> None:
        self.service = service
        self.executor = executor
        self._lock = threading.Lock()
        self._waiting: collections.deque[tuple[Caller, SignJob, Answer]] = collections.deque()
        self._lanes = 0  # workers taking waiting calls now

    def submit(self, caller: Caller, job: SignJob, answer: Answer, *, held: bool = False
               ) -> None:
        """Signs the call, or queues it with the others waiting. ``held``: the call came with
        others in one read of the link and is small on a fast token; it waits for
        :meth:`settle`, which the link calls once the read's calls were all submitted."""
        if not self.service.signs_fast(job.handle, job.key_id):
            context = contextvars.copy_context()
            self.executor.submit(context.run, self._sign, [(caller, job, answer)])
            return
        with self._lock:
            self._waiting.append((caller, job, answer))
            if held or self._lanes >= SIGN_LANES:
                return  # settle, or a worker with its next batch, takes it
            self._lanes += 1
        self.executor.submit(self._drain)

    def settle(self) -> None:
        """The calls of one read of the link are queued: when no worker is signing (the token
        idle), up to ``STREAM_BATCH`` of them are signed here, on the link's thread, with no
        hop to a worker and back, and a worker takes any left; otherwise they wait for the
        workers (a second one started if there is a lane free)."""
        with self._lock:
            if not self._waiting or self._lanes >= SIGN_LANES:
                return
            here = self._lanes == 0
            self._lanes += 1
        if here:
            self._drain(batches=1)
        else:
            self.executor.submit(self._drain)

    def _drain(self, batches: int | None = None) -> None:
        """Signs the waiting calls, ``STREAM_BATCH`` at a time, in the lane taken for it;
        after ``batches`` of them the lane and the calls left go to a worker."""
        while True:
            with self._lock:
                if not self._waiting:
                    self._lanes -= 1
                    return
                if batches == 0:
                    break
                n = min(STREAM_BATCH, len(self._waiting))
                calls = [self._waiting.popleft() for _ in range(n)]
            self._sign(calls)
            if batches is not None:
                batches -= 1
        self.executor.submit(self._drain)

    def _sign(self, calls: list[tuple[Caller, SignJob, Answer]]) -> None:
        try:
            results: list[Signature | Exception] = self.service.sign_each(
                [(caller, job) for caller, job, _ in calls])
        except Exception as exc:
            results = [exc] * len(calls)
        with answers_held():  # one frame for all (one write, one wake of the front end)
            for (_, _, answer), result in zip(calls, results, strict=True):
                if isinstance(result, Exception):
                    answer(None, result)
                else:
                    answer(pb.TokenSignResponse(
                        signature=result.signature,
                        algorithm=convert.ALGORITHM.to_pb(result.algorithm)), None)


def sign_job(request: pb.TokenSignRequest) -> SignJob:
    which = request.WhichOneof("input")
    if which not in ("data", "digest"):
        raise BadRequest("give data or digest")
    return SignJob(request.session, bytes(request.key_id),
                   bytes(request.data) if which == "data" else None,
                   bytes(request.digest) if which == "digest" else None,
                   convert.algorithm(request.algorithm), request.token_hashes)


@dataclass
class _Batch:
    jobs: list[SignJob | Exception]
    results: list[Signature | Exception] | None = None


@dataclass
class LinkedSignStream:
    """One linked SignStream: its requests as they come, its answers in their order."""

    service: TokenService
    executor: Executor
    caller: Caller
    out: StreamOut
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _waiting: collections.deque[SignJob | Exception] = field(default_factory=collections.deque)
    _batches: collections.deque[_Batch] = field(default_factory=collections.deque)
    _closed: bool = False  # the client sent its last request
    _over: bool = False  # ended, or the client went away
    _refused: bool = False  # a request could not be read: the stream ends at it

    def request(self, request: Any) -> None:
        try:
            job: SignJob | Exception = sign_job(request)
        except Exception as exc:  # a bad request: answered in its place, as an error
            job = exc
        with self._lock:
            if self._over or self._refused:
                return
            self._refused = isinstance(job, Exception)  # nothing after it is read
            self._waiting.append(job)  # started at settle, with the others of its read

    def settle(self) -> None:
        """The requests of one read of the link are all here: they go to the workers
        together (the first batch as large as what came, not one request alone)."""
        with self._lock:
            if not self._over:
                self._start()

    def half_close(self) -> None:
        with self._lock:
            self._closed = True
            self._flush()

    def cancel(self) -> None:
        with self._lock:
            self._over = True
            self._waiting.clear()  # batches signing now finish; their results are dropped

    def _start(self) -> None:
        """With the lock held: the waiting requests go to workers, up to STREAM_LANES
        batches at once."""
        while self._waiting and len(self._batches) < STREAM_LANES:
            n = min(STREAM_BATCH, len(self._waiting))
            batch = _Batch([self._waiting.popleft() for _ in range(n)])
            self._batches.append(batch)
            context = contextvars.copy_context()
            self.executor.submit(context.run, self._sign, batch)

    def _sign(self, batch: _Batch) -> None:
        try:
            results = self.service.sign_many(self.caller, batch.jobs)
        except Exception as exc:
            results = [exc]
        with self._lock, answers_held():  # the answers ready leave in one frame
            batch.results = results
            self._flush()
            self._start()

    def _flush(self) -> None:
        """With the lock held: the answers of the batches done, in order (the lock keeps
        two workers' answers from crossing), and the end once all are out."""
        while not self._over and self._batches and self._batches[0].results is not None:
            signed: list[pb.TokenSignResponse] = []
            failed: Exception | None = None
            for result in self._batches.popleft().results or ():
                if isinstance(result, Exception):
                    failed = result
                    break
                signed.append(pb.TokenSignResponse(
                    signature=result.signature,
                    algorithm=convert.ALGORITHM.to_pb(result.algorithm)))
            self.out.item(*signed)  # a batch's signatures leave in one frame
            if failed is not None:
                self._over = True
                self._waiting.clear()
                self.out.end(failed)
                return
        if self._closed and not self._over and not self._batches and not self._waiting:
            self._over = True
            self.out.end(None)
