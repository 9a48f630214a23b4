"""A lent login signs on SoftHSM2 with session copies of its keys (native/front/token_lending.cc,
docs/token.md "Where authd-front's CPU per lent Sign goes"): a copy would go on signing after
its token was removed or its key deleted, so authd-front reads the key's token object before a
Sign once 10 ms have passed since it was last seen, and the daemon's watcher recalls the lease
as before. Checked here with the watcher too slow to be the one that notices; and a key deleted
through the daemon, then a new login lent again, signs nothing with the old key. Real SoftHSM2
tokens."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid

import grpc
import pytest

from authd.v1 import token_pb2 as pb
from simulators.token.softhsm import DEFAULT_PIN, MODULE, SoftHsmToken, process_env
from tests.conftest import wait_for
from tests.service.test_front_lent_token import (
    _answer,
    _key,
    _lend,
    _lent_login,
    _login,
    _native,
    _sign,
    _stub,
    _verify,
)


@pytest.fixture
def token() -> SoftHsmToken:
    return process_env().init_token(f"lent-{uuid.uuid4().hex[:8]}")


# The watcher polls the slots this seldom: within a test it never sees a removal.
SLOW_WATCHER = {"poll_interval": 600.0}
# Signs tried after a removal or a deletion, 20 ms apart (authd-front checks every 10 ms).
TRIES = 50

DELETE_KEY = """
import sys, pkcs11
from pkcs11 import Attribute, ObjectClass
for slot in pkcs11.lib(sys.argv[1]).get_slots(token_present=True):
    found = slot.get_token()
    if found.serial.decode().strip() == sys.argv[2]:
        with found.open(user_pin=sys.argv[3], rw=True) as session:
            for o in list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                                               Attribute.ID: bytes.fromhex(sys.argv[4])})):
                o.destroy()
        break
else:
    sys.exit("absent")
"""


def _delete_behind_the_daemons_back(where: SoftHsmToken, key_id: bytes) -> None:
    """Another application on the token deletes the private key (a process of its own)."""
    done = subprocess.run([sys.executable, "-c", DELETE_KEY, MODULE, where.serial, DEFAULT_PIN,
                           key_id.hex()],
                          env=dict(os.environ, SOFTHSM2_CONF=str(process_env().conf)),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def _first_refusal(stub: object, session: str, key_id: bytes) -> tuple[str, str, int]:
    """Signs until one is refused: its code, its message and the OKs before it."""
    signed = 0
    for _ in range(TRIES):
        code, detail = _answer(lambda: _sign(stub, session, key_id, data=b"after"))
        if code != "OK":
            return code, str(detail), signed
        signed += 1
        threading.Event().wait(0.02)
    pytest.fail(f"{signed} Signs after the change, none refused")


def test_a_removed_token_stops_lent_signs_before_the_watcher_sees_it(
        server, native_front, token: SoftHsmToken) -> None:
    srv = _native(server, **SLOW_WATCHER)
    stub, session, key, _, lending, _ = _lent_login(srv, token)
    _sign(stub, session, key.key_id, data=b"x")
    started = time.monotonic()
    process_env().unplug(token)
    try:
        code, detail, _ = _first_refusal(stub, session, key.key_id)
        assert code == "UNAVAILABLE" and "not present" in detail, (code, detail)
        assert time.monotonic() - started < 30  # not the watcher (600 s)
        assert wait_for(lambda: not lending.lent(session), timeout=10)  # given back
    finally:
        process_env().plug(token)


def test_a_key_deleted_behind_the_daemons_back_signs_no_more(
        server, native_front, token: SoftHsmToken) -> None:
    srv = _native(server, **SLOW_WATCHER)
    stub, session, key, _, lending, _ = _lent_login(srv, token)
    _sign(stub, session, key.key_id, data=b"x")
    _delete_behind_the_daemons_back(token, key.key_id)
    code, _, _ = _first_refusal(stub, session, key.key_id)
    assert code in ("NOT_FOUND", "UNAVAILABLE"), code
    assert wait_for(lambda: not lending.lent(session), timeout=10)
    again = _answer(lambda: _sign(stub, session, key.key_id, data=b"x"))
    assert again[0] != "OK", again


def test_a_key_deleted_through_the_daemon_signs_nothing_on_the_next_lease(
        server, native_front, token: SoftHsmToken) -> None:
    srv = _native(server)
    stub, session, key, _, lending, _ = _lent_login(srv, token)
    for _ in range(5):  # signed on authd-front's copies of the key
        _sign(stub, session, key.key_id, data=b"x")
    stub.DeleteObject(pb.TokenDeleteObjectRequest(
        session=session, key_id=key.key_id, scope=pb.TokenDeleteObjectRequest.KEY_PAIR),
        timeout=30)
    assert not lending.lent(session)  # recalled before the deletion
    gone = _answer(lambda: _sign(stub, session, key.key_id, data=b"x"))
    assert gone[0] == "NOT_FOUND", gone
    stub.Logout(pb.TokenLogoutRequest(session=session), timeout=30)
    # A new login lent to the same authd-front instances of the module, with a new key.
    stub = _stub(srv)
    session = _login(stub, token)
    fresh, public = _key(stub, session, pb.TOKEN_KEY_SPEC_EC_P256)
    lending = _lend(srv, stub, session, fresh.key_id)
    served = lending.served_total
    old = _answer(lambda: _sign(stub, session, key.key_id, data=b"x"))
    assert old[0] == "NOT_FOUND", old
    response = _sign(stub, session, fresh.key_id, data=b"new")
    _verify(public, response, b"new", response.algorithm)
    assert lending.lent(session)
    assert wait_for(lambda: lending.served_total == served + 1, timeout=10)
    with pytest.raises(grpc.RpcError):
        _sign(stub, session, key.key_id, digest=b"\0" * 32)
