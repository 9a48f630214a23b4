"""TokenService against faults and attackers, through a real gRPC channel on SoftHSM2 tokens:
repeated wrong SO PINs, every request field with bad values, callers that give up mid-call,
other callers' handles; secrets never in an answer or a DEBUG log."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from authd.errors import details_of
from authd.v1 import token_pb2 as pb
from authd.v1 import token_pb2_grpc
from simulators.token.softhsm import SoftHsmToken, process_env

FAST = {"token": {"poll_interval": 0.1, "rescan_interval": 0.1}}
WRONG_SO_PIN = "87654321"


def stub(srv: Any, institution: str = "bank-a", role: str = "branch",
         subject: str = "teller-1") -> token_pb2_grpc.TokenServiceStub:
    return token_pb2_grpc.TokenServiceStub(srv.channel(institution, role, subject))


def code_of(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str, grpc.RpcError]:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code(), err.value.details() or "", err.value


@pytest.fixture
def token() -> SoftHsmToken:
    return process_env().init_token(f"flt-{uuid.uuid4().hex[:8]}")


def test_wrong_so_pins_are_counted_and_lock_unblocking_on_both_stores(
        server: Callable[..., Any], store_url: str, token: SoftHsmToken) -> None:
    """SoftHSM2 never locks the SO PIN; authd counts wrong ones like the user PIN's (3,
    DOMAIN §2) and then refuses UnblockPin without trying the SO PIN on the token."""
    srv = server(store_url=store_url, **FAST)
    s = stub(srv)

    def unblock(so_pin: str) -> Any:
        return s.UnblockPin(pb.TokenUnblockPinRequest(
            token_serial=token.serial, so_pin=so_pin, new_pin="654321", operator="kim",
            reason="customer forgot the PIN"))

    # a right SO PIN resets the count
    code, message, _ = code_of(lambda: unblock(WRONG_SO_PIN))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "2 attempt(s) left" in message
    unblock(token.so_pin)
    for left in (2, 1):
        code, message, err = code_of(lambda: unblock(WRONG_SO_PIN))
        assert code == grpc.StatusCode.PERMISSION_DENIED, message
        assert f"wrong SO PIN, {left} attempt(s) left" in message
        assert WRONG_SO_PIN not in message and details_of(err).metadata == {
            "attempts_left": str(left)}
    code, message, _ = code_of(lambda: unblock(WRONG_SO_PIN))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "SO PIN is now locked" in message
    # locked: even the right SO PIN is not tried, and the user PIN stays as it was
    code, message, _ = code_of(lambda: unblock(token.so_pin))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "re-initialized" in message
    assert s.Login(pb.TokenLoginRequest(token_serial=token.serial, pin="654321")).session
