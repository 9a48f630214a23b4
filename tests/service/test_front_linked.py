"""TokenService Sign and SmartcardService Transmit behind the native front end: authd-front
serves them itself and hands them to the daemon over the call link (authd/call_link.py,
native/front/calls.h). The same calls get the same answers, codes, messages and details as
from the daemon's own server: the caller and its role, a login bound to its caller's handle,
a branch node's operator, bad and undecodable requests, unknown readers and keys."""
# ruff: noqa: F811  (pytest fixtures imported from tests.pcsc_env are used as arguments)

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import Any

import grpc

from authd import errors
from authd.v1 import smartcard_pb2, smartcard_pb2_grpc, token_pb2, token_pb2_grpc
from simulators.smartcard import VirtualCardSlot
from simulators.token.softhsm import process_env
from tests.conftest import wait_for
from tests.pcsc_env import (  # noqa: F401  (fixtures)
    READERS,
    card,
    card_factory,
    pcscd,
    running_pcscd,
)

SIGN = "/authd.v1.TokenService/Sign"
TRANSMIT = "/authd.v1.SmartcardService/Transmit"
DIGEST = hashlib.sha256(b"linked").digest()
SELECT = bytes.fromhex("00a404000ba00000030800001000010000")
CHUID = bytes.fromhex("00cb3fff055c035fc10200")
FAST = {"token": {"poll_interval": 0.1, "rescan_interval": 0.1},
        "smartcard": {"idle_release_seconds": 0.2}}


def _answer(call: Callable[[], Any]) -> tuple[Any, ...]:
    try:
        result = call()
    except grpc.RpcError as exc:
        d = errors.details_of(exc)
        return (exc.code().name, exc.details() or "", d.reason, d.metadata, d.field,
                d.retry_after is not None)
    return ("OK", result)


def _raw(channel: grpc.Channel, method: str, body: bytes) -> Any:
    return channel.unary_unary(method)(body, timeout=30)


def _scenario(srv: Any, serial: str, pin: str) -> list[tuple[Any, ...]]:
    teller = token_pb2_grpc.TokenServiceStub(srv.channel("bank-a", "branch", "teller-1"))
    colleague = token_pb2_grpc.TokenServiceStub(srv.channel("bank-a", "branch", "teller-2"))
    other_bank = token_pb2_grpc.TokenServiceStub(srv.channel("bank-b", "branch", "teller-1"))
    admin = token_pb2_grpc.TokenServiceStub(srv.channel("ops", "admin"))
    nobody_channel = grpc.insecure_channel(srv.address)
    nobody = token_pb2_grpc.TokenServiceStub(nobody_channel)
    cards = smartcard_pb2_grpc.SmartcardServiceStub(srv.channel("bank-a", "branch", "teller-1"))
    backend_cards = smartcard_pb2_grpc.SmartcardServiceStub(srv.channel("bank-a", "backend"))
    nobody_cards = smartcard_pb2_grpc.SmartcardServiceStub(nobody_channel)
    wait_for(lambda: cards.ListReaders(smartcard_pb2.ListReadersRequest()).readers[0]
             .card_present, timeout=20)

    session = teller.Login(token_pb2.TokenLoginRequest(token_serial=serial, pin=pin),
                           timeout=30).session
    key = teller.GenerateKeyPair(token_pb2.TokenGenerateKeyPairRequest(
        session=session, spec=token_pb2.TOKEN_KEY_SPEC_EC_P256, label="linked"), timeout=30)

    def sign(stub: Any, handle: str = "", key_id: bytes = b"", metadata: Any = (),
             **input: bytes) -> Any:
        request = token_pb2.TokenSignRequest(session=handle or session,
                                             key_id=key_id or key.key_id, **input)
        answer = stub.Sign(request, metadata=metadata, timeout=30)
        valid = teller.Verify(token_pb2.TokenVerifyRequest(
            session=session, key_id=key.key_id, signature=answer.signature,
            **input), timeout=30).valid  # ECDSA signatures differ: check this one
        return (answer.algorithm, valid)

    def transmit(stub: Any, reader: str = READERS[0], apdus: Any = (CHUID,)) -> Any:
        answer = stub.Transmit(smartcard_pb2.TransmitRequest(reader=reader, apdus=list(apdus)),
                               timeout=30)
        return [(r.data, r.sw) for r in answer.responses]

    teller_channel = srv.channel("bank-a", "branch", "teller-1")
    answers = [_answer(c) for c in [
        lambda: sign(teller, digest=DIGEST),
        lambda: sign(teller, data=b"some data to hash"),
        lambda: sign(teller),                                     # neither data nor digest
        lambda: sign(teller, digest=b"short"),
        lambda: sign(teller, handle="no-such-session", digest=DIGEST),
        lambda: sign(teller, key_id=b"\x99\x99", digest=DIGEST),
        lambda: sign(colleague, digest=DIGEST),  # teller-1's handle: not found for others
        lambda: sign(other_bank, digest=DIGEST),
        lambda: sign(admin, digest=DIGEST),                       # PERMISSION_DENIED
        lambda: sign(nobody, digest=DIGEST),                      # UNAUTHENTICATED
        lambda: sign(teller, digest=DIGEST, metadata=(("x-authd-operator-bin", b"kim"),)),
        lambda: sign(teller, digest=DIGEST,
                     metadata=(("x-authd-operator-bin", b"\x01\x02"),)),
        lambda: _raw(teller_channel, SIGN, b"\xff\xff\xff"),     # undecodable
        lambda: transmit(cards, apdus=[SELECT, CHUID, b"\x00\xee\x00\x00"]),
        lambda: transmit(cards, apdus=[]),
        lambda: transmit(cards, apdus=[b"\x00\xa4"]),
        lambda: transmit(cards, reader="Nope 00"),
        lambda: transmit(cards, reader=READERS[1]),               # no card there
        lambda: transmit(backend_cards),                          # PERMISSION_DENIED
        lambda: transmit(nobody_cards),                           # UNAUTHENTICATED
        lambda: _raw(teller_channel, TRANSMIT, b"\xff\xff\xff"),
    ]]
    teller.Logout(token_pb2.TokenLogoutRequest(session=session), timeout=30)
    answers.append(_answer(lambda: sign(teller, digest=DIGEST)))  # logged out
    nobody_channel.close()
    return answers


def test_sign_and_transmit_answer_alike_on_both_fronts(server, native_front,
                                                       card: VirtualCardSlot) -> None:
    token = process_env().init_token(f"linked-{uuid.uuid4().hex[:8]}")
    python_server = server(server={"front": "python"}, **FAST)
    python = _scenario(python_server, token.serial, token.pin)
    python_server.stop()  # lets go of the card
    native_server = server(server={"front": "native"}, **FAST)
    assert native_server._bg.running.calls is not None  # the calls go over the link
    native = _scenario(native_server, token.serial, token.pin)
    assert [a[0] for a in python] == [
        "OK", "OK", "INVALID_ARGUMENT", "INVALID_ARGUMENT", "NOT_FOUND", "NOT_FOUND",
        "NOT_FOUND", "NOT_FOUND", "PERMISSION_DENIED", "UNAUTHENTICATED", "OK",
        "UNAUTHENTICATED", "INVALID_ARGUMENT",
        "OK", "INVALID_ARGUMENT", "INVALID_ARGUMENT", "NOT_FOUND", "UNAVAILABLE",
        "PERMISSION_DENIED", "UNAUTHENTICATED", "INVALID_ARGUMENT", "NOT_FOUND"], python
    assert python[0][1][1] and python[1][1][1]  # valid signatures
    for i, (p, n) in enumerate(zip(python, native, strict=True)):
        assert p == n, f"call {i}"


def test_concurrent_callers_through_the_link_get_their_own_answers(server, native_front,
                                                                   card: VirtualCardSlot) -> None:
    """Signatures and APDUs of several callers at once, good and refused ones interleaved:
    frames carry many calls and answers come back out of order, yet each caller gets its own
    answer (a valid signature, the card's response, or its own refusal)."""
    from concurrent.futures import ThreadPoolExecutor

    token = process_env().init_token(f"linked-{uuid.uuid4().hex[:8]}")
    srv = server(server={"front": "native"}, **FAST)
    teller = token_pb2_grpc.TokenServiceStub(srv.channel("bank-a", "branch", "teller-1"))
    colleague = token_pb2_grpc.TokenServiceStub(srv.channel("bank-a", "branch", "teller-2"))
    cards = smartcard_pb2_grpc.SmartcardServiceStub(srv.channel("bank-a", "branch", "teller-3"))
    wait_for(lambda: cards.ListReaders(smartcard_pb2.ListReadersRequest()).readers[0]
             .card_present, timeout=20)
    session = teller.Login(token_pb2.TokenLoginRequest(token_serial=token.serial,
                                                       pin=token.pin), timeout=30).session
    key = teller.GenerateKeyPair(token_pb2.TokenGenerateKeyPairRequest(
        session=session, spec=token_pb2.TOKEN_KEY_SPEC_EC_P256, label="many"), timeout=30)

    def job(i: int) -> tuple[str, Any]:
        digest = hashlib.sha256(str(i).encode()).digest()
        request = token_pb2.TokenSignRequest(session=session, key_id=key.key_id, digest=digest)
        if i % 3 == 0:
            return "sign", (digest, teller.Sign(request, timeout=60).signature)
        if i % 3 == 1:
            return "refused", _answer(lambda: colleague.Sign(request, timeout=60))[0]
        answer = cards.Transmit(smartcard_pb2.TransmitRequest(reader=READERS[0],
                                                              apdus=[CHUID]), timeout=60)
        return "card", [r.sw for r in answer.responses]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(job, range(120)))
    for kind, value in results:
        if kind == "sign":
            digest, signature = value
            assert teller.Verify(token_pb2.TokenVerifyRequest(
                session=session, key_id=key.key_id, digest=digest, signature=signature),
                timeout=30).valid
        elif kind == "refused":
            assert value == "NOT_FOUND"
        else:
            assert value == [0x9000]


def test_a_call_answered_late_and_the_idle_calls_around_it_are_answered(
        server, native_front, card: VirtualCardSlot) -> None:
    """Idle calls are read back on the thread that sent them; one whose answer takes longer
    (200 APDUs: tens of milliseconds, sent on the reader's thread) is left to the link's
    receiver thread. Every caller gets its own full answer either way, also calls sent while
    the long one is still in flight."""
    from concurrent.futures import ThreadPoolExecutor

    srv = server(server={"front": "native"}, **FAST)
    cards = smartcard_pb2_grpc.SmartcardServiceStub(srv.channel("bank-a", "branch", "teller-1"))
    wait_for(lambda: cards.ListReaders(smartcard_pb2.ListReadersRequest()).readers[0]
             .card_present, timeout=20)

    def transmit(apdus: list[bytes]) -> list[int]:
        answer = cards.Transmit(smartcard_pb2.TransmitRequest(reader=READERS[0], apdus=apdus),
                                timeout=60)
        return [r.sw for r in answer.responses]

    for _ in range(5):
        assert transmit([CHUID]) == [0x9000]
    assert transmit([CHUID] * 200) == [0x9000] * 200
    with ThreadPoolExecutor(3) as pool:
        long = pool.submit(transmit, [CHUID] * 200)
        short = [pool.submit(transmit, [CHUID]) for _ in range(30)]
        assert long.result() == [0x9000] * 200
        assert [s.result() for s in short] == [[0x9000]] * 30
    for _ in range(5):
        assert transmit([SELECT, CHUID]) == [0x9000, 0x9000]
