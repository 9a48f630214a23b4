"""A linked SignStream's requests that came in one read of the link start together, at the
read's ``settle`` (authd/token/linked_stream.py): the first batch holds all of them, not one
request alone in a hop of its own; the answers are the stream's, in order."""

from __future__ import annotations

from collections.abc import Sequence

from authd.context import Caller
from authd.token.linked_stream import STREAM_BATCH, LinkedSignStream
from authd.token.service import SignJob
from authd.v1 import token_pb2 as pb
from devices.token import SignAlgorithm
from devices.token.token import Signature
from tests.held_work import TELLER, HeldExecutor


class _Service:
    def __init__(self) -> None:
        self.batches: list[int] = []

    def sign_many(self, caller: Caller, jobs: Sequence[SignJob | Exception]
                  ) -> list[Signature | Exception]:
        self.batches.append(len(jobs))
        return [job if isinstance(job, Exception) else
                Signature(job.key_id, SignAlgorithm.ECDSA_SHA256, job.digest or b"")
                for job in jobs]


class _Out:
    def __init__(self) -> None:
        self.items: list[bytes] = []
        self.ended: list[BaseException | None] = []

    def item(self, *responses: pb.TokenSignResponse) -> None:
        self.items.extend(r.signature for r in responses)

    def end(self, error: BaseException | None) -> None:
        self.ended.append(error)


def _request(n: int) -> pb.TokenSignRequest:
    return pb.TokenSignRequest(session="tks_x", key_id=b"\x01", digest=bytes([n]) * 32)


def test_the_requests_of_one_read_start_together_at_settle() -> None:
    service, executor, out = _Service(), HeldExecutor(), _Out()
    stream = LinkedSignStream(service, executor, TELLER, out)  # type: ignore[arg-type]
    for n in range(5):  # one read of the link
        stream.request(_request(n))
    assert not executor.submitted  # nothing starts before the read is settled
    stream.settle()
    assert len(executor.submitted) == 1  # one batch of all five, one hop
    for n in range(5, 5 + STREAM_BATCH + 3):  # the next read: more than a batch
        stream.request(_request(n))
    stream.half_close()
    stream.settle()
    executor.run()
    assert service.batches == [5, STREAM_BATCH, 3]
    assert out.items == [bytes([n]) * 32 for n in range(5 + STREAM_BATCH + 3)]
    assert out.ended == [None]
