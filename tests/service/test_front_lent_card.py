"""A reader's card lent to authd-front (authd/smartcard/lending.py, native/front/lending.h):
after a run of unary Transmits from one caller on one reader, the front end sends that
caller's APDUs to pcscd itself. Another caller, a PIV call or an APDU that leaves a security
state takes the card back to the daemon first; the card is reset when the lease ends; a
card pulled mid-lease and every refusal get the daemon's own answers. Real pcscd, vpcd and
the virtual card."""
# ruff: noqa: F811  (pytest fixtures imported from tests.pcsc_env are used as arguments)

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from authd import metrics
from authd.limits import method_limits
from authd.smartcard.feature import SmartcardFeature
from authd.smartcard.lending import Lending
from authd.v1 import call_link_pb2, smartcard_pb2, smartcard_pb2_grpc
from drivers.pcsc.connection import PcscConnection
from drivers.pcsc.errors import ReaderBusy
from simulators.smartcard import VirtualCardSlot
from simulators.smartcard.vpcd import CTRL_RESET
from tests.conftest import wait_for
from tests.pcsc_env import (  # noqa: F401  (fixtures)
    READERS,
    CardFactory,
    card,
    card_factory,
    pcscd,
    running_pcscd,
    wait_card,
)
from tests.service.test_front_answers import _scrape

TRANSMIT = "/authd.v1.SmartcardService/Transmit"
CHUID = bytes.fromhex("00cb3fff055c035fc10200")
SELECT = bytes.fromhex("00a404000ba00000030800001000010000")
VERIFY = bytes.fromhex("0020008008313233343536ffff")  # the default PIN 123456
PIN_STATE = bytes.fromhex("00200080")  # 9000 when verified, 63Cx when not
# Lending after 4 calls in a row; an idle lease ends quickly.
LENDING = {"smartcard": {"idle_release_seconds": 0.5, "lend_after_calls": 4}}
# A lease that outlives any pause of a loaded machine between a test's calls (with 0.5 s, a
# pause let the lease end: the calls after it went the daemon's way until the card was lent
# again, and were not counted as lent); such a lease is ended by a recall.
HELD_LEASE = {"smartcard": {"idle_release_seconds": 60, "lend_after_calls": 4}}
LARGE_SIGN = 2 << 20


def _lending(srv: Any) -> Lending:
    return srv.app.require(SmartcardFeature).service.lending


def _answer(call: Callable[[], Any]) -> tuple[Any, ...]:
    try:
        return ("OK", [(r.data, r.sw) for r in call().responses])
    except grpc.RpcError as exc:
        return (exc.code().name, exc.details())


def _cards(srv: Any, subject: str = "teller-1") -> Any:
    return smartcard_pb2_grpc.SmartcardServiceStub(srv.channel("bank-a", "branch", subject))


def _transmit(stub: Any, *apdus: bytes, reader: str = READERS[0]) -> tuple[Any, ...]:
    return _answer(lambda: stub.Transmit(
        smartcard_pb2.TransmitRequest(reader=reader, apdus=list(apdus)), timeout=30))


def _oversized(srv: Any) -> tuple[Any, ...]:
    """A good request to the lent card carrying an unknown field (8) that makes it larger
    than the daemon takes for Transmit (and smaller than authd-front takes for any method:
    a token's messages are allowed larger, LARGE_SIGN)."""
    limit = method_limits(srv.app.config)[TRANSMIT]
    good = smartcard_pb2.TransmitRequest(reader=READERS[0], apdus=[CHUID]).SerializeToString()
    junk = call_link_pb2.LinkedCall(request=b"\x00" * limit).SerializeToString()
    call = srv.channel("bank-a", "branch", "teller-1").unary_unary(TRANSMIT)
    return _answer(lambda: smartcard_pb2.TransmitResponse.FromString(
        call(good + junk, timeout=30)))


def _daemon_sees_card(stub: Any, reader: str = READERS[0]) -> bool:
    return any(r.name == reader and r.card_present for r in stub.ListReaders(
        smartcard_pb2.ListReadersRequest(), timeout=30).readers)


def _lent_run(srv: Any, stub: Any, lending: Lending, most: int = 300,
              reader: str = READERS[0]) -> tuple[Any, ...]:
    """GET DATA calls until the card in ``reader`` is lent (a run of 4 sent at once on the
    link's thread: the first calls after a connect are timed slow and go to the reader's
    thread), at most ``most``; the last answer."""
    wait_for(lambda: _daemon_sees_card(stub, reader), timeout=20)
    granted = lending.lent_total
    answer: tuple[Any, ...] = ()
    for _ in range(most):
        answer = _transmit(stub, CHUID, reader=reader)
        assert answer[0] == "OK" and answer[1][0][1] == 0x9000, answer
        if lending.lent_total > granted:
            break
    assert lending.lent_total > granted, f"the card was not lent after {most} calls"
    assert lending.lent(reader)
    return answer


def test_a_lent_card_answers_as_the_daemon_and_its_calls_are_told(
        server, native_front, card: VirtualCardSlot) -> None:
    srv = server(server={"front": "native"}, token={"max_sign_bytes": LARGE_SIGN}, **LENDING)
    stub = _cards(srv)
    lending = _lending(srv)
    daemon_answer = _transmit(stub, SELECT, CHUID)  # before any lease: the daemon's
    first = _lent_run(srv, stub, lending)
    sent = card.apdu_count
    lent = [_transmit(stub, CHUID) for _ in range(100)]
    assert lent == [first] * 100
    assert card.apdu_count == sent + 100  # one APDU each, nothing added
    assert lending.lent(READERS[0])  # served on the lent card all along
    # Several APDUs in one call go the daemon's way, the card taken back first (one failing
    # part-way must not have the daemon send again the APDUs the card executed).
    sent = card.apdu_count
    assert _transmit(stub, SELECT, CHUID) == daemon_answer
    assert card.apdu_count == sent + 2
    assert not lending.lent(READERS[0])
    _lent_run(srv, stub, lending)
    # Refusals before a card is reached, another reader: the daemon's answers, lease kept.
    refused = [_transmit(stub), _transmit(stub, b"\x00\xa4"),
               _transmit(stub, CHUID, reader="Nope 00"), _transmit(stub, CHUID, reader=READERS[1]),
               _oversized(srv)]
    assert [r[0] for r in refused] == ["INVALID_ARGUMENT", "INVALID_ARGUMENT", "NOT_FOUND",
                                       "UNAVAILABLE", "RESOURCE_EXHAUSTED"], refused
    assert lending.lent(READERS[0])
    # Idle: the lease ends, its calls told to the daemon (the 100 of the first lease).
    wait_for(lambda: not lending.lent(READERS[0]), timeout=10)
    assert lending.served_total >= 100
    assert _transmit(stub, CHUID) == first  # the daemon's connection again


def _latency(method: str) -> dict[str, float]:
    """``method``'s samples of authd_rpc_seconds: count, sum and each bucket (cumulative)."""
    out = {"count": metrics.value("authd_rpc_seconds_count", method=method),
           "sum": metrics.value("authd_rpc_seconds_sum", method=method)}
    for bound in [*metrics.LATENCY_BUCKETS, "+Inf"]:
        le = str(float(bound)) if bound != "+Inf" else "+Inf"
        out[le] = metrics.value("authd_rpc_seconds_bucket", method=method, le=le)
    return out


def test_lent_calls_are_timed_in_the_daemons_latency_histogram(
        server, native_front, card: VirtualCardSlot) -> None:
    """The calls served on a lent card are observed in authd_rpc_seconds with the method's
    label, as a daemon-served Transmit is: its count, sum and buckets grow by them."""
    srv = server(server={"front": "native"}, **HELD_LEASE)
    stub = _cards(srv)
    lending = _lending(srv)
    _lent_run(srv, stub, lending)
    before, served = _latency(TRANSMIT), lending.served_total
    lent = [_transmit(stub, CHUID) for _ in range(100)]
    assert all(answer[0] == "OK" for answer in lent)
    assert lending.lent(READERS[0])  # all 100 served on the lent card
    lending.recall(READERS[0])  # told at the lease's end
    assert wait_for(lambda: not lending.lent(READERS[0]), timeout=30)
    after = _latency(TRANSMIT)
    assert lending.served_total == served + 100
    assert after["count"] == before["count"] + 100
    assert after["+Inf"] == before["+Inf"] + 100
    assert after["2.5"] == before["2.5"] + 100  # each well under 2.5 s
    grown = [after[le] - before[le] for le in after if le not in ("count", "sum")]
    assert grown == sorted(grown)  # cumulative buckets: each holds the ones below it
    assert 0 < after["sum"] - before["sum"] < 100 * 2.5


def test_two_readers_are_lent_at_once_each_to_its_caller(
        server, native_front, card_factory: CardFactory) -> None:
    """Two callers, each busy on a reader of its own: both cards lent at once, each caller's
    calls served by the front end (concurrently too); another caller on either reader takes
    only that reader's card back."""
    first, second = card_factory(0, "first"), card_factory(1, "second")
    srv = server(server={"front": "native"}, **HELD_LEASE)
    one, two, colleague = (_cards(srv, name) for name in ("teller-1", "teller-2", "teller-3"))
    lending = _lending(srv)
    answer_one = _lent_run(srv, one, lending, reader=READERS[0])
    answer_two = _lent_run(srv, two, lending, reader=READERS[1])
    assert lending.lent(READERS[0]) and lending.lent(READERS[1])
    served, sent = lending.served_total, (first.apdu_count, second.apdu_count)
    for _ in range(50):  # alternating: neither card goes back through the daemon
        assert _transmit(one, CHUID, reader=READERS[0]) == answer_one
        assert _transmit(two, CHUID, reader=READERS[1]) == answer_two
    with ThreadPoolExecutor(2) as pool:  # and at the same time
        both = [pool.submit(lambda stub=stub, reader=reader: [
            _transmit(stub, CHUID, reader=reader) for _ in range(50)])
            for stub, reader in ((one, READERS[0]), (two, READERS[1]))]
        assert both[0].result() == [answer_one] * 50
        assert both[1].result() == [answer_two] * 50
    assert lending.lent(READERS[0]) and lending.lent(READERS[1])
    assert (first.apdu_count, second.apdu_count) == (sent[0] + 100, sent[1] + 100)
    # Another caller on reader 0: that card back to the daemon, reader 1 still lent.
    assert _transmit(colleague, CHUID, reader=READERS[0]) == answer_one
    assert not lending.lent(READERS[0]) and lending.lent(READERS[1])
    assert _transmit(two, CHUID, reader=READERS[1]) == answer_two
    assert lending.lent(READERS[1])
    # And on reader 1, once reader 0 is lent again: only reader 1 goes back.
    _lent_run(srv, one, lending, reader=READERS[0])
    assert _transmit(colleague, CHUID, reader=READERS[1]) == answer_two
    assert lending.lent(READERS[0]) and not lending.lent(READERS[1])
    # Every call served lent was told, lease by lease.
    lending.recall(READERS[0])
    assert wait_for(lambda: not lending.lent(READERS[0]), timeout=30)
    assert lending.served_total == served + 201


def test_a_recall_goes_to_its_reader_alone(server, native_front,
                                           card_factory: CardFactory) -> None:
    """With an APDU of reader 0's lent card held in the card, reader 1's lease is recalled
    and given back at once: the recall does not wait for another reader's APDU."""
    first, second = card_factory(0, "first"), card_factory(1, "second")
    srv = server(server={"front": "native"}, **HELD_LEASE)
    one, two = _cards(srv, "teller-1"), _cards(srv, "teller-2")
    lending = _lending(srv)
    answer_one = _lent_run(srv, one, lending, reader=READERS[0])
    answer_two = _lent_run(srv, two, lending, reader=READERS[1])
    real, inside, release = first.card.process, threading.Event(), threading.Event()

    def held(apdu: bytes) -> bytes:
        inside.set()
        release.wait(60)
        return real(apdu)

    first.card.process = held  # type: ignore[method-assign]
    with ThreadPoolExecutor(1) as pool:
        try:
            pending = pool.submit(_transmit, one, CHUID, reader=READERS[0])
            assert inside.wait(30)  # the front end waits for reader 0's card
            lending.recall(READERS[1])
            assert wait_for(lambda: not lending.lent(READERS[1]), timeout=30)
            assert not pending.done() and lending.lent(READERS[0])
        finally:
            release.set()
            first.card.process = real  # type: ignore[method-assign]
        assert pending.result(timeout=30) == answer_one
    assert second.apdu_count > 0 and _transmit(two, CHUID, reader=READERS[1]) == answer_two


def test_a_card_asked_back_with_no_call_in_flight_is_given_back(
        server, native_front, card: VirtualCardSlot) -> None:
    """The daemon asks for a lent card back (its card removed, a PIV call) while the caller's
    calls are all served by the front end, nothing in flight on the link: the front end still
    reads the recall and gives the card back at once."""
    srv = server(server={"front": "native"}, **HELD_LEASE)
    stub, lending = _cards(srv), _lending(srv)
    first = _lent_run(srv, stub, lending)
    sent = card.apdu_count
    assert _transmit(stub, CHUID) == first and card.apdu_count == sent + 1
    assert lending.lent(READERS[0])  # served by the front end: nothing went on the link
    lending.recall(READERS[0])
    assert wait_for(lambda: not lending.lent(READERS[0]), timeout=30)
    assert _transmit(stub, CHUID) == first  # the daemon's connection again


def test_another_callers_apdus_take_the_lent_card_back(server, native_front,
                                                       card: VirtualCardSlot) -> None:
    srv = server(server={"front": "native"}, **LENDING)
    teller, colleague = _cards(srv, "teller-1"), _cards(srv, "teller-2")
    lending = _lending(srv)
    first = _lent_run(srv, teller, lending)
    granted = lending.lent_total
    assert _transmit(colleague, CHUID) == first  # the daemon's, the card taken back first
    assert not lending.lent(READERS[0])
    # A PIV call of the daemon's own takes it back as well.
    _lent_run(srv, teller, lending)
    status = colleague.GetPivStatus(smartcard_pb2.CardRequest(reader=READERS[0]),
                                    timeout=30)
    assert status.pin_attempts_remaining == 3
    assert not lending.lent(READERS[0])
    assert lending.lent_total == granted + 1
    assert _transmit(teller, CHUID) == first


def test_a_security_state_never_outlives_a_call_nor_the_lease(server, native_front,
                                                              card: VirtualCardSlot) -> None:
    srv = server(server={"front": "native"}, **LENDING)
    stub = _cards(srv)
    lending = _lending(srv)
    _lent_run(srv, stub, lending)
    # VERIFY goes the daemon's way (the card back first), which drops the PIN after the call.
    verified = _transmit(stub, VERIFY, PIN_STATE)
    assert verified[0] == "OK" and [sw for _, sw in verified[1]] == [0x9000, 0x9000]
    assert not lending.lent(READERS[0])
    assert not card.card.pin_verified
    # Whatever state the card holds when a lease ends for good is reset with it (a reset
    # from the reader, not only pcscd powering an unused card down later).
    _lent_run(srv, stub, lending)
    controls = _controls(card)
    card.card.pin_verified = True  # as if left by the lease's APDUs
    wait_for(lambda: not lending.lent(READERS[0]), timeout=10)
    wait_for(lambda: CTRL_RESET in controls, timeout=10)
    assert not card.card.pin_verified
    assert _transmit(stub, PIN_STATE)[1][0][1] & 0xFFF0 == 0x63C0


def _controls(card: VirtualCardSlot) -> list[int]:
    """The reader's control messages to the card from now on (power, reset)."""
    seen: list[int] = []
    answer = card._answer

    def recorded(sock: Any, payload: bytes) -> None:
        if len(payload) == 1:
            seen.append(payload[0])
        answer(sock, payload)

    card._answer = recorded  # type: ignore[method-assign]
    return seen


def test_a_card_pulled_mid_lease_gets_the_daemons_answer(server, native_front,
                                                         card: VirtualCardSlot) -> None:
    srv = server(server={"front": "native"}, **LENDING)
    stub = _cards(srv)
    lending = _lending(srv)
    first = _lent_run(srv, stub, lending)
    card.remove()
    wait_card(READERS[0], False)
    # The daemon's own view too: until its reader monitor saw the removal, it answers a call
    # by trying to connect (another message than "no card in reader").
    assert wait_for(lambda: not _daemon_sees_card(stub), timeout=30)
    pulled = _transmit(stub, CHUID)
    again = _transmit(stub, CHUID)  # the daemon's path: nothing lent any more
    assert pulled == again and pulled[0] == "UNAVAILABLE", pulled
    assert not lending.lent(READERS[0])
    card.insert()
    wait_card(READERS[0], True)
    assert _lent_run(srv, stub, lending) == first


def test_no_third_pcsc_client_gets_a_lent_card_and_one_holding_it_after_is_told(
        server, native_front, card: VirtualCardSlot) -> None:
    """A lent card is held exclusively by the front end; once the lease ended another
    application may take the card, and the next Transmit gets the daemon's answer for a
    card held elsewhere (the daemon connects again and finds it taken), not a stale lease."""
    srv = server(server={"front": "native"}, **LENDING)
    stub = _cards(srv)
    lending = _lending(srv)
    first = _lent_run(srv, stub, lending)
    with pytest.raises(ReaderBusy):
        PcscConnection(READERS[0])
    wait_for(lambda: not lending.lent(READERS[0]), timeout=10)
    with PcscConnection(READERS[0]):
        held = _transmit(stub, CHUID)
        assert held == _transmit(stub, CHUID) and held[0] != "OK", held
    assert not lending.lent(READERS[0])
    assert _lent_run(srv, stub, lending) == first


def test_every_unary_transmit_is_counted_by_the_front_end(server, native_front,
                                                          card: VirtualCardSlot) -> None:
    """The front end's tally (authd_front_answers_total) counts each unary Transmit it
    answered, whether the daemon answered it over the link or the lent card did, with the
    code the caller got."""
    srv = server(server={"front": "native", "metrics_listen": "127.0.0.1:0"},
                 token={"max_sign_bytes": LARGE_SIGN}, **LENDING)
    stub = _cards(srv)
    lending = _lending(srv)
    start = _scrape(srv)
    answers = [_transmit(stub, SELECT, CHUID)]
    wait_for(lambda: stub.ListReaders(smartcard_pb2.ListReadersRequest()).readers[0]
             .card_present, timeout=20)
    granted = lending.lent_total
    while lending.lent_total == granted and len(answers) < 300:
        answers.append(_transmit(stub, CHUID))
    assert lending.lent(READERS[0])
    answers += [_transmit(stub, CHUID) for _ in range(20)]  # on the lent card
    answers += [_transmit(stub), _transmit(stub, CHUID, reader="Nope 00")]
    told: dict[str, int] = {}
    for answer in answers:
        told[answer[0]] = told.get(answer[0], 0) + 1
    assert set(told) == {"OK", "INVALID_ARGUMENT", "NOT_FOUND"}, told

    def counted() -> dict[str, float]:
        seen = _scrape(srv)
        return {code: sum(v - start.get(k, 0.0) for k, v in seen.items()
                          if k[0] == "authd_front_answers_total"
                          and dict(k[1])["method"] == TRANSMIT and dict(k[1])["code"] == code)
                for code in told}

    expected = {code: float(n) for code, n in told.items()}
    assert wait_for(lambda: counted() == expected, 10), (counted(), expected)
