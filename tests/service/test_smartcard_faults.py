"""SmartcardService against bad input and other callers, through a real gRPC channel on pcscd +
vpcd + the virtual PIV card: every field with empty, huge, NUL and unknown values; a PIN
verified in one caller's raw APDUs never serves another caller's; secrets never in an answer,
an audit record or a DEBUG log."""


from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import generate_latest

from authd import metrics
from authd.v1 import smartcard_pb2 as pb
from authd.v1 import smartcard_pb2_grpc
from simulators.smartcard import VirtualCardSlot, open_slot
from tests.conftest import TestServer, make_config, wait_for
from tests.pcsc_env import READERS, Pcscd, card_factory, pcscd, running_pcscd, wait_card

__all__ = ["card_factory", "pcscd", "running_pcscd"]  # fixtures used by name
READER = READERS[0]
PIN = "123456"
SELECT_PIV = bytes.fromhex("00a4040009a00000030800001000")
PIN_STATUS = bytes.fromhex("00200080")  # VERIFY without data: 9000 when verified
HUGE_TEXT = "x" * 12_000  # within every method's request limit, past every field's
HUGE_BYTES = b"\x30" * 12_000
BAD = grpc.StatusCode.INVALID_ARGUMENT


def verify_apdu(pin: str) -> bytes:
    return bytes.fromhex("0020008008") + pin.encode().ljust(8, b"\xff")


def stub(srv: Any, institution: str = "bank-a",
         subject: str = "teller-1") -> smartcard_pb2_grpc.SmartcardServiceStub:
    return smartcard_pb2_grpc.SmartcardServiceStub(srv.channel(institution, "branch", subject))


@dataclass
class Bench:
    srv: TestServer
    slot: VirtualCardSlot
    cards: smartcard_pb2_grpc.SmartcardServiceStub


@pytest.fixture(scope="module")
def bench(pcscd: Pcscd) -> Iterator[Bench]:
    """One daemon and one card (with a key in 9A) for the whole matrix."""
    if not pcscd.running:
        pcscd.start()
    root = Path(tempfile.mkdtemp(prefix="authd-card-faults-"))
    slot = open_slot(root / "card.json", pcscd.port(0))
    slot.insert()
    wait_card(READER, True)
    srv = TestServer(make_config(root / "node"))
    cards = stub(srv)
    try:
        assert wait_for(lambda: cards.ListReaders(pb.ListReadersRequest()).readers[0]
                        .card_present)
        cards.GenerateKey(pb.GenerateKeyRequest(reader=READER, slot=pb.PIV_SLOT_AUTHENTICATION,
                                                algorithm=pb.KEY_ALGORITHM_EC_P256))
        yield Bench(srv, slot, cards)
    finally:
        srv.stop()
        slot.remove()
        if pcscd.running:
            wait_card(READER, False)
        shutil.rmtree(root, ignore_errors=True)


Build = Callable[[], tuple[str, Any]]
AUTH, SIG = pb.PIV_SLOT_AUTHENTICATION, pb.PIV_SLOT_SIGNATURE
P256 = pb.KEY_ALGORITHM_EC_P256


def sign(**fields: Any) -> tuple[str, Any]:
    base: dict[str, Any] = {"reader": READER, "slot": AUTH, "algorithm": P256, "pin": PIN,
                            "message": b"x"}
    base.update(fields)
    return "Sign", pb.SignRequest(**base)


# (case, build() -> (method, request), expected status)
MATRIX: list[tuple[str, Build, grpc.StatusCode]] = [
    ("info reader empty", lambda: ("GetCardInfo", pb.CardRequest()), BAD),
    ("info reader 12 KB", lambda: ("GetCardInfo", pb.CardRequest(reader=HUGE_TEXT)), BAD),
    ("info reader NUL", lambda: ("GetCardInfo", pb.CardRequest(reader=READER + "\x00")),
     grpc.StatusCode.NOT_FOUND),
    ("status reader unknown", lambda: ("GetPivStatus", pb.CardRequest(reader="no such")),
     grpc.StatusCode.NOT_FOUND),
    ("status reader without card", lambda: ("GetPivStatus", pb.CardRequest(reader=READERS[1])),
     grpc.StatusCode.UNAVAILABLE),
    ("pin empty", lambda: ("VerifyPin", pb.VerifyPinRequest(reader=READER)), BAD),
    ("pin 12 KB", lambda: ("VerifyPin", pb.VerifyPinRequest(reader=READER, pin=HUGE_TEXT)), BAD),
    ("pin NUL", lambda: ("VerifyPin", pb.VerifyPinRequest(reader=READER, pin="12345\x00")), BAD),
    ("pin not ASCII", lambda: ("VerifyPin", pb.VerifyPinRequest(reader=READER, pin="가나다라마바")),
     BAD),
    ("change new pin short", lambda: ("ChangePin", pb.ChangePinRequest(
        reader=READER, old_pin=PIN, new_pin="1")), BAD),
    ("unblock puk empty", lambda: ("UnblockPin", pb.UnblockPinRequest(
        reader=READER, new_pin=PIN)), BAD),
    ("generate slot unspecified", lambda: ("GenerateKey", pb.GenerateKeyRequest(
        reader=READER, algorithm=P256)), BAD),
    ("generate slot unknown", lambda: ("GenerateKey", pb.GenerateKeyRequest(
        reader=READER, slot=0x99, algorithm=P256)), BAD),
    ("generate algorithm unknown", lambda: ("GenerateKey", pb.GenerateKeyRequest(
        reader=READER, slot=SIG, algorithm=99)), BAD),
    ("generate management key short", lambda: ("GenerateKey", pb.GenerateKeyRequest(
        reader=READER, slot=SIG, algorithm=P256, management_key=b"1")), BAD),
    ("generate management key 12 KB", lambda: ("GenerateKey", pb.GenerateKeyRequest(
        reader=READER, slot=SIG, algorithm=P256, management_key=HUGE_BYTES)), BAD),
    ("generate management key wrong", lambda: ("GenerateKey", pb.GenerateKeyRequest(
        reader=READER, slot=SIG, algorithm=P256, management_key=b"1" * 24)),
     grpc.StatusCode.FAILED_PRECONDITION),
    ("import certificate empty", lambda: ("ImportCertificate", pb.ImportCertificateRequest(
        reader=READER, slot=SIG)), BAD),
    ("import certificate 12 KB", lambda: ("ImportCertificate", pb.ImportCertificateRequest(
        reader=READER, slot=SIG, certificate_der=HUGE_BYTES)), BAD),
    ("import slot unknown", lambda: ("ImportCertificate", pb.ImportCertificateRequest(
        reader=READER, slot=0x11, certificate_der=b"x")), BAD),
    ("sign message and digest", lambda: sign(digest=bytes(32)), BAD),
    ("sign neither", lambda: sign(message=b""), BAD),
    ("sign hash unknown", lambda: sign(hash="md5"), BAD),
    ("sign hash NUL", lambda: sign(hash="sha256\x00"), BAD),
    ("sign message 1 MiB + 1", lambda: sign(message=bytes((1 << 20) + 1)), BAD),
    ("sign message 3 MB", lambda: sign(message=bytes(3_000_000)),
     grpc.StatusCode.RESOURCE_EXHAUSTED),  # refused before it is parsed (authd/limits.py)
    ("sign digest 31 bytes", lambda: sign(message=b"", digest=bytes(31)), BAD),
    ("sign pin 12 KB", lambda: sign(pin=HUGE_TEXT), BAD),
    ("sign slot unknown", lambda: sign(slot=0x42), BAD),
    ("sign empty slot", lambda: sign(slot=pb.PIV_SLOT_CARD_AUTH),
     grpc.StatusCode.FAILED_PRECONDITION),
    ("transmit nothing", lambda: ("Transmit", pb.TransmitRequest(reader=READER)), BAD),
    ("transmit APDU of 1 byte", lambda: ("Transmit", pb.TransmitRequest(
        reader=READER, apdus=[b"\x00"])), BAD),
    ("transmit APDU of 12 KB", lambda: ("Transmit", pb.TransmitRequest(
        reader=READER, apdus=[HUGE_BYTES])), BAD),
    ("transmit 300 APDUs", lambda: ("Transmit", pb.TransmitRequest(
        reader=READER, apdus=[SELECT_PIV] * 300)), BAD),
    ("transmit 100,000 APDUs", lambda: ("Transmit", pb.TransmitRequest(
        reader=READER, apdus=[SELECT_PIV] * 100_000)), grpc.StatusCode.RESOURCE_EXHAUSTED),
    ("register customer NUL", lambda: ("RegisterCard", pb.RegisterCardRequest(
        reader=READER, pin=PIN, customer_id="C\x00", operator_id="kim")), BAD),
    ("register operator empty", lambda: ("RegisterCard", pb.RegisterCardRequest(
        reader=READER, pin=PIN, customer_id="C-1")), BAD),
    ("deregister serial NUL", lambda: ("DeregisterCard", pb.DeregisterCardRequest(
        card_serial="\x00", customer_id="C-1", operator_id="kim")), BAD),
    ("deregister serial 12 KB", lambda: ("DeregisterCard", pb.DeregisterCardRequest(
        card_serial=HUGE_TEXT, customer_id="C-1", operator_id="kim")), BAD),
]


@pytest.mark.parametrize("case,build,expected", MATRIX, ids=[m[0] for m in MATRIX])
def test_a_bad_request_gets_a_clear_error_and_the_card_stays_usable(
        bench: Bench, case: str, build: Build, expected: grpc.StatusCode) -> None:
    method, request = build()
    with pytest.raises(grpc.RpcError) as err:
        getattr(bench.cards, method)(request, timeout=30)
    message = err.value.details() or ""
    assert err.value.code() == expected, (case, message)
    assert message and "internal error" not in message and len(message) < 300
    status = bench.cards.GetPivStatus(pb.CardRequest(reader=READER))
    assert status.pin_attempts_remaining == 3 and not status.pin_blocked  # nothing was counted
    assert bench.cards.Sign(pb.SignRequest(reader=READER, slot=AUTH, algorithm=P256, pin=PIN,
                                           message=b"still usable")).signature


def test_a_pin_verified_in_raw_apdus_never_serves_another_callers_apdus(bench: Bench) -> None:
    """The reader's connection is shared by every caller: a PIN that one caller verified with
    Transmit (or TransmitStream) must not be verified any more when another caller's APDUs
    reach the card, while it holds for the rest of the verifying call."""
    srv = bench.srv
    teller, other = stub(srv), stub(srv, institution="bank-b", subject="teller-9")
    assert wait_for(lambda: teller.ListReaders(pb.ListReadersRequest()).readers[0].card_present)

    def sws(cards: Any, *apdus: bytes) -> list[int]:
        answer = cards.Transmit(pb.TransmitRequest(reader=READER, apdus=list(apdus)))
        return [r.sw for r in answer.responses]

    assert sws(other, SELECT_PIV, PIN_STATUS) == [0x9000, 0x63C3]
    # within one call the verified PIN serves the caller's next APDUs
    assert sws(teller, SELECT_PIV, verify_apdu(PIN), PIN_STATUS) == [0x9000] * 3
    # the other caller sends no SELECT (which would reset the PIV application's state itself)
    assert sws(other, PIN_STATUS)[-1] != 0x9000
    stream = teller.TransmitStream(iter([pb.TransmitRequest(
        reader=READER, apdus=[SELECT_PIV, verify_apdu(PIN)])]))
    assert [r.sw for r in next(stream).responses] == [0x9000, 0x9000]
    assert sws(other, PIN_STATUS)[-1] != 0x9000
    # reads that leave no security state keep the connection (and need no reset)
    assert sws(other, SELECT_PIV) == [0x9000]


def test_pins_reach_no_answer_audit_record_metric_or_debug_log(
        bench: Bench, caplog: pytest.LogCaptureFixture) -> None:
    srv, cards = bench.srv, bench.cards
    assert wait_for(lambda: cards.ListReaders(pb.ListReadersRequest()).readers[0].card_present)
    caplog.set_level(logging.DEBUG)
    new_pin, wrong_pin = "7" + uuid.uuid4().hex[:7], "9" + uuid.uuid4().hex[:7]
    puk, new_after_unblock = "12345678", "5" + uuid.uuid4().hex[:7]
    answers = [
        cards.VerifyPin(pb.VerifyPinRequest(reader=READER, pin=wrong_pin)),
        cards.ChangePin(pb.ChangePinRequest(reader=READER, old_pin=PIN, new_pin=new_pin)),
        cards.UnblockPin(pb.UnblockPinRequest(reader=READER, puk=puk,
                                              new_pin=new_after_unblock)),
    ]
    answers.append(cards.Sign(pb.SignRequest(reader=READER, slot=AUTH, algorithm=P256,
                                             pin=new_after_unblock, message=b"m")))
    answers.append(cards.Transmit(pb.TransmitRequest(
        reader=READER, apdus=[SELECT_PIV, verify_apdu(wrong_pin)])))
    try:
        cards.VerifyPin(pb.VerifyPinRequest(reader=READER, pin=wrong_pin + "\x00"))
    except grpc.RpcError as exc:
        answers.append(exc.details())
    # the card as the other tests expect it: PIN back to the default, no attempt used
    cards.ChangePin(pb.ChangePinRequest(reader=READER, old_pin=new_after_unblock, new_pin=PIN))
    assert answers[0].outcome == pb.PinResult.WRONG and answers[3].signature
    trail = srv.app.db.run(lambda tx: tx.all("SELECT target, detail FROM audit_log"),
                           write=False)
    seen = [caplog.text, repr(trail), generate_latest(metrics.REGISTRY).decode(),
            *(str(a) for a in answers)]
    assert any(r.levelno == logging.DEBUG for r in caplog.records)  # the DEBUG log was on
    for secret in (new_pin, wrong_pin, new_after_unblock, puk):
        for text in seen:
            assert secret not in text and secret.encode().hex() not in text, secret
