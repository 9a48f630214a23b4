"""A token initialized again under its serial (an issuer's tool, SoftHSM2's softhsm2-util)
starts without the daemon's counts of wrong PINs and SO PINs of its earlier initialization;
a token that keeps its initialization keeps its counts. Real SoftHSM2 tokens, the real daemon,
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from authd.token.service import MARKER
from authd.v1 import token_pb2 as pb
from authd.v1 import token_pb2_grpc
from simulators.token.softhsm import MODULE, SoftHsmToken, process_env
from tests.conftest import wait_for

FAST = {"token": {"poll_interval": 0.1, "rescan_interval": 0.1}}
WRONG = "87654321"


def attempt(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    try:
        call()
    except grpc.RpcError as err:
        return err.code(), err.details() or ""
    return grpc.StatusCode.OK, ""


class Terminal:
    def __init__(self, srv: Any) -> None:
        self.srv = srv
        self.stub = token_pb2_grpc.TokenServiceStub(srv.channel("bank-a", "branch", "teller-1"))

    def wait_listed(self, token: SoftHsmToken) -> None:
        assert wait_for(lambda: any(
            t.serial == token.serial and t.label == token.label
            for t in self.stub.ListTokens(pb.ListTokensRequest(), timeout=30).tokens),
            timeout=30)

    def unblock(self, token: SoftHsmToken, so_pin: str) -> tuple[grpc.StatusCode, str]:
        return attempt(lambda: self.stub.UnblockPin(pb.TokenUnblockPinRequest(
            token_serial=token.serial, so_pin=so_pin, new_pin="654321", operator="kim",
            reason="customer forgot the PIN"), timeout=30))

    def login(self, token: SoftHsmToken, pin: str) -> tuple[grpc.StatusCode, str]:
        def call() -> None:
            session = self.stub.Login(pb.TokenLoginRequest(token_serial=token.serial, pin=pin),
                                      timeout=30).session
            self.stub.Logout(pb.TokenLogoutRequest(session=session), timeout=30)
        return attempt(call)

    def reinitialized(self, token: SoftHsmToken) -> list[dict]:
        rows = self.srv.app.db.run(lambda tx: tx.all(
            "SELECT outcome, detail FROM audit_records WHERE action = 'token.reinitialized'"
            " AND target = ?", (f"token:{token.serial}",)), write=False)
        return [{"outcome": r[0], **json.loads(r[1])} for r in rows]


MARKERS = """
import sys, pkcs11
from pkcs11 import Attribute, ObjectClass
for slot in pkcs11.lib(sys.argv[1]).get_slots(token_present=True):
    found = slot.get_token()
    if found.serial.decode().strip() == sys.argv[2]:
        with found.open() as session:
            for o in session.get_objects({Attribute.CLASS: ObjectClass.DATA,
                                          Attribute.APPLICATION: sys.argv[3]}):
                print(bytes(o[Attribute.VALUE]).hex())
        break
else:
    sys.exit("absent")
"""


def markers(token: SoftHsmToken) -> list[str]:
    """The daemon's initialization markers on the token, read straight from SoftHSM2 by a
    process of its own (SoftHSM2 sees tokens made after its C_Initialize only then)."""
    done = subprocess.run([sys.executable, "-c", MARKERS, MODULE, token.serial, MARKER],
                          env=dict(os.environ, SOFTHSM2_CONF=str(process_env().conf)),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.fixture
def terminal(server: Callable[..., Any], store_url: str) -> Terminal:
    return Terminal(server(store_url=store_url, **FAST))


@pytest.mark.parametrize("new_label", [False, True], ids=["same-label", "new-label"])
def test_a_token_initialized_again_does_not_keep_its_locked_so_pin_count(
        terminal: Terminal, new_label: bool) -> None:
    env = process_env()
    token = env.init_token(f"ri-{uuid.uuid4().hex[:8]}")
    terminal.wait_listed(token)
    codes = [terminal.unblock(token, WRONG)[0] for _ in range(3)]
    assert codes == [grpc.StatusCode.PERMISSION_DENIED] * 2 + [
        grpc.StatusCode.FAILED_PRECONDITION]
    assert terminal.unblock(token, token.so_pin)[0] == grpc.StatusCode.FAILED_PRECONDITION
    assert len(markers(token)) == 1  # put on the token once, not once per wrong SO PIN

    again = env.reinitialize(token, f"ri2-{uuid.uuid4().hex[:8]}" if new_label else None,
                             pin="135790")
    assert again.serial == token.serial and markers(again) == []
    terminal.wait_listed(again)
    code, message = terminal.unblock(again, WRONG)
    assert code == grpc.StatusCode.PERMISSION_DENIED and "2 attempt(s) left" in message
    assert terminal.unblock(again, again.so_pin)[0] == grpc.StatusCode.OK
    (record,) = terminal.reinitialized(again)
    assert record == {"outcome": "counts_cleared",
                      "detected_by": "label" if new_label else "marker",
                      "pin_failures_before": 0, "so_pin_failures_before": 3}
    assert again.so_pin not in json.dumps(record)


def test_the_user_pin_count_of_the_earlier_initialization_is_cleared_too(
        terminal: Terminal) -> None:
    env = process_env()
    token = env.init_token(f"ru-{uuid.uuid4().hex[:8]}")
    terminal.wait_listed(token)
    assert [terminal.login(token, WRONG)[0] for _ in range(2)] == [
        grpc.StatusCode.PERMISSION_DENIED] * 2
    again = env.reinitialize(token, pin="135790")
    terminal.wait_listed(again)
    code, message = terminal.login(again, WRONG)
    assert code == grpc.StatusCode.PERMISSION_DENIED and "2 attempt(s) left" in message
    assert terminal.login(again, "135790")[0] == grpc.StatusCode.OK
    assert [r["pin_failures_before"] for r in terminal.reinitialized(again)] == [2]


def test_a_token_that_keeps_its_initialization_keeps_its_counts(terminal: Terminal) -> None:
    env = process_env()
    token = env.init_token(f"rk-{uuid.uuid4().hex[:8]}")
    terminal.wait_listed(token)
    assert [terminal.unblock(token, WRONG)[0] for _ in range(3)] == [
        grpc.StatusCode.PERMISSION_DENIED] * 2 + [grpc.StatusCode.FAILED_PRECONDITION]
    # pulled out and put back: the same initialization, still locked
    env.unplug(token)
    assert wait_for(lambda: token.serial not in {
        t.serial for t in terminal.stub.ListTokens(pb.ListTokensRequest(), timeout=30).tokens},
        timeout=30)
    env.plug(token)
    terminal.wait_listed(token)
    assert terminal.unblock(token, token.so_pin)[0] == grpc.StatusCode.FAILED_PRECONDITION
    # the marker is not one of the token's objects a terminal sees or deletes
    listed = terminal.stub.ListObjects(pb.TokenListObjectsRequest(token_serial=token.serial),
                                       timeout=30)
    assert not listed.keys and not listed.certificates
    assert len(markers(token)) == 1 and terminal.reinitialized(token) == []
