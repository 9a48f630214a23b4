"""TransmitStream on a reader's card lent to authd-front (authd/smartcard/lending.py,
authd/smartcard/linked_stream.py, native/front/lending.h and streams.cc LinkedStream):
a stream's messages of one APDU count toward lending as unary Transmits do and one of their
answers lends the card, after which the stream's next messages are served by the front end
on the card, one at a time, in order, and told to the daemon as lent stream requests; a
stream that starts while the card is lent is served there from its first message. A message
that may not be served there (several APDUs, a security-state APDU, another reader) gives the
card back first and gets the daemon's answer. Real pcscd, vpcd and the virtual card."""
# ruff: noqa: F811  (pytest fixtures imported from tests.pcsc_env are used as arguments)

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

import grpc

from authd.v1 import smartcard_pb2
from simulators.smartcard import VirtualCardSlot
from tests.conftest import wait_for
from tests.pcsc_env import (  # noqa: F401  (fixtures)
    READERS,
    card,
    card_factory,
    pcscd,
    running_pcscd,
    wait_card,
)
from tests.service.test_front_answers import _scrape
from tests.service.test_front_lent_card import (
    CHUID,
    HELD_LEASE,
    PIN_STATE,
    SELECT,
    VERIFY,
    _cards,
    _daemon_sees_card,
    _lending,
    _lent_run,
    _transmit,
)

TRANSMIT_STREAM = "/authd.v1.SmartcardService/TransmitStream"
DISCOVERY = bytes.fromhex("00cb3fff035c017e00")  # GET DATA of another object: other bytes


def _request(*apdus: bytes, reader: str = READERS[0]) -> Any:
    return smartcard_pb2.TransmitRequest(reader=reader, apdus=list(apdus))


def _pairs(response: Any) -> list[tuple[bytes, int]]:
    return [(r.data, r.sw) for r in response.responses]


class _Stream:
    """A TransmitStream whose messages are sent one by one, each answer awaited."""

    def __init__(self, stub: Any) -> None:
        self._requests: queue.Queue[Any] = queue.Queue()
        self._call = stub.TransmitStream(self._given(), timeout=60)

    def _given(self) -> Iterator[Any]:
        while (request := self._requests.get()) is not None:
            yield request

    def send(self, *apdus: bytes, reader: str = READERS[0]) -> list[tuple[bytes, int]]:
        self._requests.put(_request(*apdus, reader=reader))
        return _pairs(next(self._call))

    def end(self) -> tuple[str, str] | None:
        """Half-closes; the stream's error (code, details) if it ended with one."""
        self._requests.put(None)
        try:
            rest = list(self._call)
        except grpc.RpcError as exc:
            return exc.code().name, exc.details() or ""
        assert rest == []
        return None

    def error(self) -> tuple[str, str]:
        """The error the stream ended with (after a message the daemon refused)."""
        try:
            got = next(self._call)
        except grpc.RpcError as exc:
            return exc.code().name, exc.details() or ""
        raise AssertionError(f"answered {got}, not ended")


def _lent_stream_count(srv: Any) -> float:
    return _scrape(srv).get(("authd_lent_stream_requests_total", (("method", TRANSMIT_STREAM),)),
                            0.0)


def _streams_count(srv: Any) -> float:
    return _scrape(srv).get(("authd_rpc_seconds_count", (("method", TRANSMIT_STREAM),)), 0.0)


def _metrics_server(server: Any) -> Any:
    return server(server={"front": "native", "metrics_listen": "127.0.0.1:0"}, **HELD_LEASE)


def test_a_stream_lent_the_card_by_its_own_answers_answers_as_the_daemon(
        server, native_front, card: VirtualCardSlot) -> None:
    """One stream, no unary call: after a run of its messages the card is lent with one of
    their answers, and the rest are served by the front end, in order, with the daemon's
    bytes, one APDU on the card each, counted as lent stream requests once told."""
    srv = _metrics_server(server)
    stub, lending = _cards(srv), _lending(srv)
    wait_for(lambda: _daemon_sees_card(stub), timeout=20)
    daemons = {CHUID: _transmit(stub, CHUID)[1], DISCOVERY: _transmit(stub, DISCOVERY)[1]}
    assert daemons[CHUID] != daemons[DISCOVERY]
    stream = _Stream(stub)
    granted, counted = lending.lent_total, _lent_stream_count(srv)
    for _ in range(300):  # the first messages after a connect are timed slow: not inline
        assert stream.send(CHUID) == daemons[CHUID]
        if lending.lent_total > granted:
            break
    assert lending.lent(READERS[0]), "the card was not lent to the stream"
    sent, streamed = card.apdu_count, lending.streamed_total
    order = [CHUID, DISCOVERY, DISCOVERY, CHUID] * 25
    assert [stream.send(apdu) for apdu in order] == [daemons[apdu] for apdu in order]
    assert card.apdu_count == sent + 100  # one APDU each, nothing added
    assert lending.lent(READERS[0])  # all served on the lent card
    assert stream.end() is None
    lending.recall(READERS[0])  # the messages not told yet come with the return
    assert wait_for(lambda: not lending.lent(READERS[0]), timeout=30)
    assert lending.streamed_total == streamed + 100
    assert lending.served_total == 0  # stream messages, not unary calls
    assert wait_for(lambda: _lent_stream_count(srv) >= counted + 100, timeout=10)
    assert _lent_stream_count(srv) == counted + 100


def test_a_stream_begun_on_a_lent_card_is_served_there_from_its_first_message(
        server, native_front, card: VirtualCardSlot) -> None:
    """The card lent after unary calls: a stream of that caller is served by the front end
    from its first message on (the daemon never sees it), requests sent ahead answered in
    order one at a time."""
    srv = _metrics_server(server)
    stub, lending = _cards(srv), _lending(srv)
    first = _lent_run(srv, stub, lending)
    assert first[0] == "OK"
    discovery = _transmit(stub, DISCOVERY)
    assert lending.lent(READERS[0])
    streams, sent, counted = _streams_count(srv), card.apdu_count, _lent_stream_count(srv)
    order = [CHUID, DISCOVERY, CHUID, CHUID, DISCOVERY] * 10
    answers = [_pairs(r) for r in  # sent ahead as fast as the client may
               stub.TransmitStream(iter([_request(a) for a in order]), timeout=60)]
    assert answers == [first[1] if a == CHUID else discovery[1] for a in order]
    assert card.apdu_count == sent + 50
    assert lending.lent(READERS[0])
    lending.recall(READERS[0])
    assert wait_for(lambda: not lending.lent(READERS[0]), timeout=30)
    assert wait_for(lambda: _lent_stream_count(srv) >= counted + 50, timeout=10)
    assert _lent_stream_count(srv) == counted + 50
    assert lending.streamed_total == 50
    assert _streams_count(srv) == streams  # the stream never went the daemon's way


def test_a_message_not_served_on_the_lent_card_gives_it_back_and_gets_the_daemons_answer(
        server, native_front, card: VirtualCardSlot) -> None:
    """Several APDUs in a message and a security-state APDU take the card back to the daemon
    first, which answers them as it does unlent (and drops the PIN after the message); the
    stream goes on and is lent again; a message for an unknown reader ends it with the
    daemon's error."""
    srv = _metrics_server(server)
    stub, lending = _cards(srv), _lending(srv)
    first = _lent_run(srv, stub, lending)
    daemons_pair = _transmit(stub, SELECT, CHUID)  # the card back to the daemon for it
    assert daemons_pair[0] == "OK" and not lending.lent(READERS[0])
    _lent_run(srv, stub, lending)
    stream = _Stream(stub)
    assert stream.send(CHUID) == first[1]  # served lent
    assert lending.lent(READERS[0])
    sent = card.apdu_count
    assert stream.send(SELECT, CHUID) == daemons_pair[1]
    assert card.apdu_count == sent + 2
    assert not lending.lent(READERS[0])  # given back first
    granted = lending.lent_total
    for _ in range(300):  # the stream's own messages lend it again
        assert stream.send(CHUID) == first[1]
        if lending.lent_total > granted:
            break
    assert lending.lent(READERS[0])
    verified = stream.send(VERIFY)
    assert verified == [(b"", 0x9000)]
    assert not lending.lent(READERS[0])
    assert not card.card.pin_verified  # dropped by the daemon after the message
    assert stream.send(PIN_STATE)[0][1] & 0xFFF0 == 0x63C0
    assert stream.send(CHUID) == first[1]
    stream._requests.put(_request(CHUID, reader="Nope 00"))
    assert stream.error()[0] == "NOT_FOUND"


def test_a_card_pulled_mid_stream_ends_it_with_the_daemons_error(
        server, native_front, card: VirtualCardSlot) -> None:
    """The lent card removed while a stream is served on it: the PC/SC error gives the card
    back and the message goes the daemon's way, whose error ends the stream as it ends a
    stream that was never lent."""
    srv = _metrics_server(server)
    stub, lending = _cards(srv), _lending(srv)
    first = _lent_run(srv, stub, lending)
    stream = _Stream(stub)
    assert stream.send(CHUID) == first[1]
    assert lending.lent(READERS[0]) and lending.streamed_total == 0  # told at the return
    card.remove()
    wait_card(READERS[0], False)
    stream._requests.put(_request(CHUID))
    code, _details = stream.error()
    assert code == "UNAVAILABLE"
    assert not lending.lent(READERS[0])
    assert lending.streamed_total == 1  # the message answered before, told with the return
    daemons = _Stream(stub)  # the daemon's path, nothing lent
    daemons._requests.put(_request(CHUID))
    assert daemons.error()[0] == code
