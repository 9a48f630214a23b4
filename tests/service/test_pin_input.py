"""PINs a PIN pad cannot send (control characters, non-ASCII letters, invisible characters)
are refused INVALID_ARGUMENT before any token or card is called, on every PIN field of the
token and smartcard APIs, and are never counted as wrong PINs; through a real gRPC channel
on SoftHSM2 tokens and pcscd + vpcd + the virtual PIV card, on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from authd.errors import details_of
from authd.v1 import smartcard_pb2, smartcard_pb2_grpc, token_pb2_grpc
from authd.v1 import token_pb2 as pb
from simulators.smartcard import open_slot
from simulators.token.softhsm import process_env
from tests.conftest import TestServer, make_config, wait_for
from tests.pcsc_env import READERS, Pcscd, card_factory, pcscd, running_pcscd, wait_card

__all__ = ["card_factory", "pcscd", "running_pcscd"]  # fixtures used by name
FAST = {"token": {"poll_interval": 0.1, "rescan_interval": 0.1}}
BAD = grpc.StatusCode.INVALID_ARGUMENT
# Each is 6..8 characters, so only the characters themselves are wrong.
UNSENDABLE = {
    "NUL": "1234\x0056",
    "newline": "123456\n",
    "tab": "\t123456",
    "DEL": "12345\x7f",
    "escape": "\x1b[2J12",
    "C1 control": "1234\x8556",
    "Hangul": "가나다라마바",
    "full-width digits": "１２３４５６",
    "zero-width space": "123\u200b456",
    "no-break space": "123\u00a0456",
    "emoji": "12345\U0001f600",
}
CASES = list(UNSENDABLE.items())


def rpc_error(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value


def refused(method: Callable[..., Any], request: Any, field: str) -> None:
    err = rpc_error(lambda: method(request, timeout=30))
    message = err.details() or ""
    assert err.code() == BAD, message
    assert "PIN pad" in message and field in message and len(message) < 200
    assert details_of(err).field == field


# --------------------------------------------------------------------------- tokens


def test_unsendable_token_pins_are_refused_before_the_token_and_never_counted(
        server: Callable[..., Any], store_url: str) -> None:
    # The token before the daemon: softhsm2-util makes it in two steps, and a rescan between
    # them would hold it without a user PIN until the next (test_token_api.py, srv).
    token = process_env().init_token(f"pad-{uuid.uuid4().hex[:8]}")
    srv = server(store_url=store_url, **FAST)
    teller = token_pb2_grpc.TokenServiceStub(srv.channel("bank-a", "branch", "teller-1"))
    unknown = "NOSUCH-" + uuid.uuid4().hex[:8]
    for serial in (token.serial, unknown):  # refused before the serial is even looked up
        for _, bad in CASES:
            refused(teller.Login, pb.TokenLoginRequest(token_serial=serial, pin=bad), "pin")
            refused(teller.UnblockPin, pb.TokenUnblockPinRequest(
                token_serial=serial, so_pin=bad, new_pin="654321", operator="kim",
                reason="forgotten"), "so_pin")
            refused(teller.UnblockPin, pb.TokenUnblockPinRequest(
                token_serial=serial, so_pin=token.so_pin, new_pin=bad, operator="kim",
                reason="forgotten"), "new_pin")
    # none of the 36 refusals was counted: the first wrong PIN and SO PIN leave 2 of 3
    err = rpc_error(lambda: teller.Login(pb.TokenLoginRequest(
        token_serial=token.serial, pin="99999999")))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert details_of(err).metadata == {"attempts_left": "2"}
    err = rpc_error(lambda: teller.UnblockPin(pb.TokenUnblockPinRequest(
        token_serial=token.serial, so_pin="99999999", new_pin="654321", operator="kim",
        reason="forgotten")))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert details_of(err).metadata == {"attempts_left": "2"}
    # the PIN on the token is still the customer's, and no refusal left an audit record
    assert teller.Login(pb.TokenLoginRequest(token_serial=token.serial, pin=token.pin)).session
    outcomes = srv.app.db.run(lambda tx: tx.all(
        "SELECT action, outcome FROM audit_records WHERE target = ?", (f"token:{token.serial}",)),
        write=False)
    assert sorted(tuple(r) for r in outcomes) == sorted([
        ("token.login", "wrong_pin"), ("token.unblock_pin", "wrong_so_pin"),
        ("token.login", "ok")])
    assert not srv.app.db.run(lambda tx: tx.all(
        "SELECT 1 FROM audit_records WHERE target = ?", (f"token:{unknown}",)), write=False)


def test_printable_ascii_pins_with_letters_and_punctuation_still_reach_the_token(
        server: Callable[..., Any]) -> None:
    pin = "Ab1 !~{}"
    # The token before the daemon: softhsm2-util makes it in two steps, and a rescan between
    # them would hold it without a user PIN until the next (test_token_api.py, srv).
    token = process_env().init_token(f"asc-{uuid.uuid4().hex[:8]}", pin, "so-PIN#12")
    srv = server(**FAST)
    teller = token_pb2_grpc.TokenServiceStub(srv.channel("bank-a", "branch", "teller-1"))
    assert teller.Login(pb.TokenLoginRequest(token_serial=token.serial, pin=pin)).session


# --------------------------------------------------------------------------- smartcards

READER = READERS[0]
PIN, PUK = "123456", "12345678"


@pytest.fixture(scope="module")
def cards(pcscd: Pcscd) -> Iterator[smartcard_pb2_grpc.SmartcardServiceStub]:
    if not pcscd.running:
        pcscd.start()
    root = Path(tempfile.mkdtemp(prefix="authd-pin-pad-"))
    slot = open_slot(root / "card.json", pcscd.port(0))
    slot.insert()
    wait_card(READER, True)
    srv = TestServer(make_config(root / "node"))
    stub = smartcard_pb2_grpc.SmartcardServiceStub(srv.channel("bank-a", "branch", "teller-1"))
    try:
        assert wait_for(lambda: stub.ListReaders(smartcard_pb2.ListReadersRequest())
                        .readers[0].card_present)
        yield stub
    finally:
        srv.stop()
        slot.remove()
        if pcscd.running:
            wait_card(READER, False)
        shutil.rmtree(root, ignore_errors=True)


def card_calls(reader: str, bad: str) -> list[tuple[str, str, Any]]:
    s = smartcard_pb2
    return [
        ("VerifyPin", "pin", s.VerifyPinRequest(reader=reader, pin=bad)),
        ("ChangePin", "old_pin", s.ChangePinRequest(reader=reader, old_pin=bad, new_pin=PIN)),
        ("ChangePin", "new_pin", s.ChangePinRequest(reader=reader, old_pin=PIN, new_pin=bad)),
        ("UnblockPin", "puk", s.UnblockPinRequest(reader=reader, puk=bad, new_pin=PIN)),
        ("UnblockPin", "new_pin", s.UnblockPinRequest(reader=reader, puk=PUK, new_pin=bad)),
        ("Sign", "pin", s.SignRequest(reader=reader, slot=s.PIV_SLOT_AUTHENTICATION,
                                      algorithm=s.KEY_ALGORITHM_EC_P256, pin=bad,
                                      message=b"x")),
        ("RegisterCard", "pin", s.RegisterCardRequest(reader=reader, pin=bad,
                                                      customer_id="C-1", operator_id="kim")),
    ]


@pytest.mark.parametrize("name,bad", CASES, ids=[c[0] for c in CASES])
def test_unsendable_card_pins_are_refused_before_the_card_and_never_counted(
        cards: smartcard_pb2_grpc.SmartcardServiceStub, name: str, bad: str) -> None:
    for reader in (READER, "no such reader"):  # refused before the reader is looked up
        for method, field, request in card_calls(reader, bad):
            refused(getattr(cards, method), request, field)
    status = cards.GetPivStatus(smartcard_pb2.CardRequest(reader=READER))
    assert status.pin_attempts_remaining == 3 and not status.pin_blocked
    ok = cards.VerifyPin(smartcard_pb2.VerifyPinRequest(reader=READER, pin=PIN))
    assert ok.outcome == smartcard_pb2.PinResult.OK


def test_a_certificate_issued_onto_a_card_refuses_an_unsendable_pin_first(
        server: Callable[..., Any]) -> None:
    """CompleteIssuance and RenewCertificate onto a smartcard take the card's PIN: checked
    before the request or certificate is even looked up."""
    from authd.v1 import certificate_pb2 as cpb
    from authd.v1 import certificate_pb2_grpc

    srv = server()
    teller = certificate_pb2_grpc.CertificateServiceStub(srv.channel("bank-a", "branch",
                                                                      "teller-1"))
    for _, bad in CASES:
        card = cpb.SmartcardStorage(reader=READER, pin=bad)
        refused(teller.CompleteIssuance, cpb.CompleteIssuanceRequest(
            request_id="no-such-request", smartcard=card), "smartcard.pin")
        refused(teller.RenewCertificate, cpb.RenewCertificateRequest(
            serial="00", smartcard=card), "smartcard.pin")
