"""Linked unary Signs that arrive together (authd/token/linked_stream.py ``LinkedSigns``): the
calls waiting on a fast token are signed in one hop, in their order, and each is answered on
its own — one call's error answers only that call — in one frame; a slow token's call goes to
a worker of its own."""

from __future__ import annotations

from collections.abc import Sequence

from authd.context import Caller, Role
from authd.token.linked_stream import LinkedSigns
from authd.token.service import SignJob
from devices.errors import NoSuchObject
from devices.token import SignAlgorithm
from devices.token.token import Signature
from tests.held_work import TELLER, Answers, HeldExecutor

OTHER = Caller("bank-b", Role.BRANCH, "teller-1")


class _Service:
    def __init__(self, fast: set[str]) -> None:
        self.fast = fast
        self.batches: list[list[tuple[Caller, SignJob]]] = []

    def signs_fast(self, handle: str, key_id: bytes = b"") -> bool:
        return handle in self.fast

    def sign_each(self, calls: Sequence[tuple[Caller, SignJob]]) -> list[Signature | Exception]:
        self.batches.append(list(calls))
        return [NoSuchObject("no such token session") if caller is OTHER else
                Signature(job.key_id, SignAlgorithm.ECDSA_SHA256, job.digest or b"")
                for caller, job in calls]


def _linked() -> tuple[_Service, HeldExecutor, LinkedSigns]:
    """LinkedSigns over a service whose token "fast" signs on the link's thread, with its
    workers held until the test runs them."""
    service = _Service({"fast"})
    executor = HeldExecutor()
    return service, executor, LinkedSigns(service, executor)  # type: ignore[arg-type]


def _job(handle: str, n: int) -> SignJob:
    return SignJob(handle, b"\x01", None, bytes([n]) * 32, None, False)


def test_calls_waiting_together_are_signed_in_one_hop_and_answered_each_on_its_own() -> None:
    service, executor, signs = _linked()
    answers = Answers()
    answer = answers.for_call

    calls = [(TELLER, _job("fast", 0)), (TELLER, _job("fast", 1)), (OTHER, _job("fast", 2)),
             (TELLER, _job("fast", 3)), (TELLER, _job("fast", 4)), (TELLER, _job("slow", 5))]
    for n, (caller, job) in enumerate(calls):
        signs.submit(caller, job, answer(n))
    assert len(executor.submitted) == 3  # two lanes for the fast token, one for the slow call
    executor.run()
    fast = [b for b in service.batches if b[0][1].handle == "fast"]
    assert [len(b) for b in fast] == [5]  # the first lane took every waiting call
    assert [job.digest for _, job in fast[0]] == [bytes([n]) * 32 for n in range(5)]
    assert [len(b) for b in service.batches if b[0][1].handle == "slow"] == [1]
    assert sorted(answers) == list(range(6))
    for n in (0, 1, 3, 4, 5):
        response, error = answers[n]
        assert error is None and response.signature == bytes([n]) * 32
    response, error = answers[2]  # the other bank's call: its own error, nobody else's
    assert response is None and isinstance(error, NoSuchObject)


def test_calls_of_one_read_are_signed_at_settle_on_its_thread_when_no_worker_signs() -> None:
    service, executor, signs = _linked()
    answers = Answers()
    answer = answers.for_call

    calls = [(TELLER, _job("fast", n)) for n in range(3)] + [(OTHER, _job("fast", 3))]
    for n, (caller, job) in enumerate(calls):
        signs.submit(caller, job, answer(n), held=True)
    assert not executor.submitted and not service.batches  # held until the read is settled
    signs.settle()
    assert not executor.submitted  # signed here: no hop to a worker
    assert [[job.digest for _, job in b] for b in service.batches] == [
        [bytes([n]) * 32 for n in range(4)]]
    for n in range(3):
        response, error = answers[n]
        assert error is None and response.signature == bytes([n]) * 32
    response, error = answers[3]  # the other bank's call: its own error only
    assert response is None and isinstance(error, NoSuchObject)

    # More than one batch: the first is signed here, a worker takes the rest.
    service.batches.clear()
    for n in range(20):
        signs.submit(TELLER, _job("fast", n), answer(n), held=True)
    signs.settle()
    assert [len(b) for b in service.batches] == [16] and len(executor.submitted) == 1
    executor.run()
    assert [len(b) for b in service.batches] == [16, 4]


def test_calls_of_one_read_wait_for_the_worker_signing_now() -> None:
    service, executor, signs = _linked()
    signs.submit(TELLER, _job("fast", 0), lambda response, error: None)  # a worker's lane
    assert len(executor.submitted) == 1
    answered: list[int] = []
    for n in (1, 2):
        signs.submit(TELLER, _job("fast", n), lambda r, e, n=n: answered.append(n), held=True)
    signs.settle()
    assert not service.batches and not answered  # not on the link's thread: a worker is busy
    assert len(executor.submitted) == 2  # the second lane
    executor.run()
    assert [len(b) for b in service.batches] == [3] and answered == [1, 2]
