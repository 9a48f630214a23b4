"""SignStream over the native front end's call link (authd/call_link.py): the same answers as
``TokenServicer.SignStream`` — signatures in order, the stream ending at its first error with
that error — without the daemon's gRPC server. Requests waiting to be signed go to a worker
together (up to ``STREAM_BATCH`` in one hop), in up to ``STREAM_LANES`` batches at once; each
signature goes through ``TokenService.sign`` as a unary one does, so a token's session use
and locking are the same."""

from __future__ import annotations

import collections
import contextvars
import threading
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from authd.call_link import StreamOut
from authd.context import Caller
from authd.token import convert
from authd.token.service import SignJob, TokenService
from authd.v1 import token_pb2 as pb
from devices.errors import BadRequest
from devices.token.token import Signature

STREAM_BATCH = 16  # signatures of one stream signed in one hop to a worker
STREAM_LANES = 2  # batches of one stream signed at once (pooled sessions in parallel)


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
            self._waiting.append(job)
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
        with self._lock:
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
