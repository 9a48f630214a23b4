"""What every path into the verification engine does per verification, in one place.

The gRPC servicer (one call, a batch, a stream frame) and the native front end's link
(``authd/otp/link.py``) both hand verifications to the engine through a ``Verifier``: each
request takes a token of its institution's rate limit and passes the request checks, or is
answered with the error without reaching the engine; the others go to the engine as one group,
and the group's answers come back once, in the order of the requests, each as a
``VerifyResponse`` (``error`` set for one that was not evaluated).

``Admission`` bounds the verifications a server process holds at once (submitted, not yet
answered): a call that would go beyond ``[otp] max_in_flight`` is refused whole with
LimitReached (reason ``BUSY``, a ``retry_after``), at once, nothing counted, rather than queued
behind work the node cannot finish in time.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from authd import errors, metrics, validate
from authd.context import Caller
from authd.otp import keys, stages
from authd.otp.convert import OUTCOME
from authd.otp.engine import Answer, Group
from authd.otp.service import Job, VerifyResult
from authd.ratelimit import RateLimiter
from authd.v1 import otp_pb2
from devices.errors import AuthdError, BadRequest, LimitReached

log = logging.getLogger(__name__)

MAX_CODE = 10
CRASH_COMMITTED = f"{keys.METHOD}/committed"  # the test seam: a keyed verification committed
BUSY = ("the OTP center is busy: this server process holds {held} verifications, its limit is "
        "{limit}; nothing was counted; retry in {retry:.2f} s")


class Engine(Protocol):
    def submit_all(self, jobs: Sequence[tuple[Job, str]],
                   done: Callable[[list[Answer[VerifyResult]]], None], *,
                   bounded: bool = True, trace: stages.Trace | None = None
                   ) -> Group[VerifyResult]: ...

    def pace(self) -> float: ...


def check_code(value: str, name: str = "code") -> str:
    """A code as typed: digits only, at most 10 (the device's length is checked by the rules)."""
    if not value:
        raise BadRequest(f"{name} is empty", field=name)
    if len(value) > MAX_CODE or not value.isascii() or not value.isdigit():
        raise BadRequest(f"{name} must be 6 to 8 digits", field=name)
    return value


def answer(result: VerifyResult, request_id: str = "") -> otp_pb2.VerifyResponse:
    return otp_pb2.VerifyResponse(outcome=OUTCOME.to_pb(result.outcome),
                                  consecutive_failures=result.failures,
                                  attempts_left=result.attempts_left,
                                  message=result.message, request_id=request_id)


def refused(error: BaseException, request_id: str, method: str) -> otp_pb2.VerifyResponse:
    return otp_pb2.VerifyResponse(request_id=request_id,
                                  error=errors.status_proto(error, method))


class Admission:
    """Verifications held by this process, bounded (0: unbounded). Not thread-safe: used from
    one thread (the event loop, or the link's reader)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def enter(self, count: int, pace: float) -> None:
        """Hold ``count`` more, or raise LimitReached; ``pace``: the engine's seconds per
        verification, for the retry_after."""
        if self.limit and self.held + count > self.limit and count:
            retry = min(5.0, max(0.01, self.held * pace))
            raise LimitReached(BUSY.format(held=self.held, limit=self.limit, retry=retry),
                               retry_after=retry, reason="BUSY",
                               metadata={"limit": "max_in_flight"})
        self.held += count

    def leave(self, count: int) -> None:
        self.held -= count


# The metric children verifications are counted with (institution; institution, outcome).
_REPLAYED = metrics.Children(metrics.OTP_VERIFICATION_REPLAYS)
_VERIFIED = metrics.Children(metrics.OTP_VERIFICATIONS)


def count_verified(result: VerifyResult, institution: str) -> None:
    """Count a committed verification in the OTP metrics (one answered again from its key in
    the replays, not again in the outcomes)."""
    if result.replayed:
        _REPLAYED(institution).inc()
    else:
        _VERIFIED(institution, result.outcome.value).inc()


def _count(jobs: list[tuple[Job, str]], answers: list[Answer[VerifyResult]]) -> None:
    outcomes: dict[tuple[str, str], int] = {}
    for (job, _), (result, error) in zip(jobs, answers, strict=True):
        if error is None and result is not None:
            key = (job[2].institution, "" if result.replayed else result.outcome.value)
            outcomes[key] = outcomes.get(key, 0) + 1
    for (institution, outcome), count in outcomes.items():
        (_VERIFIED(institution, outcome) if outcome else _REPLAYED(institution)).inc(count)


class Verifier:
    def __init__(self, engine: Engine, limiter: RateLimiter, batch_request_max: int,
                 crash_points: Iterable[str] = ()) -> None:
        self.engine = engine
        self.limiter = limiter
        self.batch_request_max = batch_request_max
        self.crash_committed = CRASH_COMMITTED in crash_points

    def crash_at_committed(self, jobs: Iterable[Job]) -> None:
        """The test seam of a node that dies between a keyed verification's commit and its
        answer (``[server] crash_points = ["OtpService.Verify/committed"]``)."""
        if self.crash_committed and any(job[3] is not None for job in jobs):
            log.warning("crash point %s: the node ends now", CRASH_COMMITTED)
            os.kill(os.getpid(), signal.SIGKILL)

    def check_size(self, count: int) -> None:
        if count > self.batch_request_max:
            raise BadRequest(f"at most {self.batch_request_max} verifications a call or frame "
                             f"([otp] batch_request_max); this one has {count}",
                             field="requests")

    def prepare(self, request: otp_pb2.VerifyRequest, caller: Caller,
                named: str | None = None) -> Job:
        """The engine's job for ``request``, after its rate-limit token and checks (raises the
        error its caller gets otherwise). ``named``: the call's metadata key (a unary
        Verify), checked already."""
        self.limiter.check(caller.institution)
        validate.serial(request.serial)
        check_code(request.code)
        validate.text(request.request_id, "request_id")
        key = (keys.request_key(request.idempotency_key, named)
               if request.idempotency_key or named is not None else None)
        return (request.serial, request.code, caller,
                None if key is None else keys.keyed(caller.institution, key, request.serial,
                                                    request.code))

    def submit(self, requests: Sequence[otp_pb2.VerifyRequest], caller: Caller, method: str,
               done: Callable[[list[otp_pb2.VerifyResponse]], None], *,
               bounded: bool = True) -> Group[VerifyResult]:
        """Every request of one call (or stream frame) to the engine; ``done`` gets their
        answers in order, once (on a writer's thread, or the loop, or here)."""
        return self.submit_mixed(requests, [caller] * len(requests), method, done,
                                 bounded=bounded)

    def submit_mixed(self, requests: Sequence[otp_pb2.VerifyRequest],
                     callers: Sequence[Caller], method: str,
                     done: Callable[[list[otp_pb2.VerifyResponse]], None], *,
                     bounded: bool = True, named: dict[int, str] | None = None,
                     trace: stages.Trace | None = None) -> Group[VerifyResult]:
        """As ``submit``, each request with its own caller (the calls of one link frame);
        ``named``: the metadata key of the request at that index (a unary Verify's);
        ``trace``: the frame's path, stamped by the engine (stage timings)."""
        answers: list[otp_pb2.VerifyResponse | None] = [None] * len(requests)
        jobs: list[tuple[Job, str]] = []
        where: list[int] = []
        for index, (request, caller) in enumerate(zip(requests, callers, strict=True)):
            try:
                job = self.prepare(request, caller, named.get(index) if named else None)
            except AuthdError as exc:
                answers[index] = refused(exc, request.request_id, method)
                continue
            jobs.append((job, request.serial))
            where.append(index)

        def settled(results: list[Answer[VerifyResult]]) -> None:
            if self.crash_committed:
                self.crash_at_committed(job for job, _ in jobs)
            _count(jobs, results)
            for index, (result, error) in zip(where, results, strict=True):
                request_id = requests[index].request_id
                answers[index] = (refused(error, request_id, method) if error is not None
                                  else answer(result, request_id))  # type: ignore[arg-type]
            done(answers)  # type: ignore[arg-type]  # every slot is set now

        return self.engine.submit_all(jobs, settled, bounded=bounded, trace=trace)
