"""``authd token so-pin status|reset``: the node's administrator clears the daemon's count of
wrong SO PINs of one token, while the daemon runs, through the real ``authd`` command in a
process of its own, on SQLite and PostgreSQL; the reset is audited and touches no other token."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from authd.v1 import token_pb2 as pb
from authd.v1 import token_pb2_grpc
from simulators.token.softhsm import SoftHsmToken, process_env
from tests.conftest import TestServer, wait_for
from tests.nodes import serve_env

FAST = {"token": {"poll_interval": 0.1, "rescan_interval": 0.1}}
WRONG = "87654321"


def authd(srv: TestServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "authd.cli", "token", "so-pin", *args,
         "--data-dir", str(srv.config.data_dir), "--store", srv.config.store_url],
        env=serve_env(), capture_output=True, text=True, timeout=120)


def unblock(teller: token_pb2_grpc.TokenServiceStub, token: SoftHsmToken,
            so_pin: str) -> grpc.StatusCode:
    try:
        teller.UnblockPin(pb.TokenUnblockPinRequest(
            token_serial=token.serial, so_pin=so_pin, new_pin="654321", operator="kim",
            reason="customer forgot the PIN"), timeout=30)
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def lock(teller: token_pb2_grpc.TokenServiceStub, token: SoftHsmToken) -> None:
    # A token initialized a moment ago is seen once the daemon's next scan finds it.
    assert wait_for(lambda: token.serial in {
        t.serial for t in teller.ListTokens(pb.ListTokensRequest(), timeout=30).tokens},
        timeout=30)
    codes = [unblock(teller, token, WRONG) for _ in range(3)]
    assert codes == [grpc.StatusCode.PERMISSION_DENIED] * 2 + [
        grpc.StatusCode.FAILED_PRECONDITION]
    assert unblock(teller, token, token.so_pin) == grpc.StatusCode.FAILED_PRECONDITION


def test_the_administrator_clears_a_locked_so_pin_count_under_a_running_daemon(
        server: Callable[..., Any], store_url: str) -> None:
    env = process_env()
    # The token before the daemon: softhsm2-util makes it in two steps, and a rescan between
    # them would hold it without a user PIN until the next (test_token_api.py, srv).
    token = env.init_token(f"sor-{uuid.uuid4().hex[:8]}")
    other = env.init_token(f"soo-{uuid.uuid4().hex[:8]}")
    srv = server(store_url=store_url, **FAST)
    teller = token_pb2_grpc.TokenServiceStub(srv.channel("bank-a", "branch", "teller-1"))
    lock(teller, token)
    assert unblock(teller, other, WRONG) == grpc.StatusCode.PERMISSION_DENIED

    status = authd(srv, "status", token.serial)
    assert status.returncode == 0, status.stderr
    assert "3 wrong SO PIN(s) counted of 3, locked" in status.stdout

    done = authd(srv, "reset", token.serial, "--operator", "park", "--reason",
                 "SO PIN envelope opened with the branch manager")
    assert done.returncode == 0, done.stderr
    assert "3 wrong SO PIN(s) cleared by park" in done.stdout
    assert "3 attempt(s) left" in authd(srv, "status", token.serial).stdout
    # the other token's count was left alone
    assert "1 wrong SO PIN(s) counted of 3, 2 attempt(s) left" in authd(
        srv, "status", other.serial).stdout

    # the running daemon tries the SO PIN again: a right one unblocks, and a wrong one counts
    # from the start again
    assert unblock(teller, token, WRONG) == grpc.StatusCode.PERMISSION_DENIED
    assert unblock(teller, token, token.so_pin) == grpc.StatusCode.OK
    assert teller.Login(pb.TokenLoginRequest(token_serial=token.serial, pin="654321")).session

    rows = srv.app.db.run(lambda tx: tx.all(
        "SELECT institution, role, subject, outcome, detail FROM audit_records"
        " WHERE action = 'token.so_pin_reset' AND target = ?", (f"token:{token.serial}",)),
        write=False)
    assert len(rows) == 1
    institution, role, subject, outcome, detail = rows[0]
    assert (institution, role, subject, outcome) == ("-", "admin", "authd token so-pin reset",
                                                     "ok")
    assert '"operator":"park"' in detail.replace(" ", "")
    assert '"failures_before":3' in detail.replace(" ", "")
    assert "envelope" in detail and token.so_pin not in detail

    # a second reset finds nothing to clear and records nothing
    again = authd(srv, "reset", token.serial, "--operator", "park", "--reason", "again")
    assert again.returncode == 0 and "nothing changed" in again.stdout
    assert len(srv.app.db.run(lambda tx: tx.all(
        "SELECT 1 FROM audit_records WHERE action = 'token.so_pin_reset'"), write=False)) == 1


@pytest.mark.parametrize("args,words", [
    (["reset", "SERIAL", "--operator", "", "--reason", "r"], "operator is required"),
    (["reset", "SERIAL", "--operator", "park", "--reason", " "], "reason is required"),
    (["reset", "SERIAL", "--operator", "pa\nrk", "--reason", "r"], "control characters"),
    (["reset", "", "--operator", "park", "--reason", "r"], "serial"),
    (["reset", "x" * 40, "--operator", "park", "--reason", "r"], "serial"),
], ids=["no operator", "blank reason", "newline in operator", "empty serial", "long serial"])
def test_a_bad_reset_is_one_line_exit_2_and_changes_nothing(
        server: Callable[..., Any], args: list[str], words: str) -> None:
    # The token before the daemon: softhsm2-util makes it in two steps, and a rescan between
    # them would hold it without a user PIN until the next (test_token_api.py, srv).
    token = process_env().init_token(f"sob-{uuid.uuid4().hex[:8]}")
    srv = server(**FAST)
    teller = token_pb2_grpc.TokenServiceStub(srv.channel("bank-a", "branch", "teller-1"))
    lock(teller, token)
    done = authd(srv, *[token.serial if a == "SERIAL" else a for a in args])
    assert done.returncode == 2 and words in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert unblock(teller, token, token.so_pin) == grpc.StatusCode.FAILED_PRECONDITION

