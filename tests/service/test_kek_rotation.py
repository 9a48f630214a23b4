"""``authd kek rotate``: every sealed value moved to a new key-encryption key while the daemon
serves, resumable after ``kill -9``, audited, the old key destroyed last; bad input changes
nothing; two center nodes on PostgreSQL share the key through one SoftHSM2 token directory."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import pytest

from authd.certificate.feature import CertificateFeature
from authd.hid_otp.feature import HidOtpFeature
from authd.kek.keys import read_keys
from authd.kek.lock import rotation_lock
from authd.kek.rotation import DONE, Rotation, count_sealed, open_rotation, pages
from authd.kek.sealed import SEALED
from authd.secrets import SecretBox, create_token_key, destroy_token_key, open_secret_box
from authd.storage import Database, open_database
from authd.v1 import otp_pb2 as O
from authd.v1 import otp_pb2_grpc, security_card_pb2_grpc
from authd.v1 import security_card_pb2 as C
from devices.otp.codes import hotp
from drivers.kek_token import KeyAbsent, TokenKek
from tests.conftest import KEK_PIN_FILE, joined
from tests.nodes import Node, serve_env

SEED = bytes(range(1, 21))
REFRESH = 0.2
STORE_TIMEOUT = 2.0


def _label() -> str:
    return f"kek-{uuid.uuid4().hex[:8]}"  # key 1 of this test's store alone on the token


def _settings(label: str) -> dict[str, Any]:
    # No verification rate limit: the verifying thread calls as fast as the daemon answers.
    # The old key is destroyed at the end of a rotation here (tests/service/test_kek_backup.py
    # keeps it for restores).
    return {"kek": {"key_label": label, "refresh_seconds": REFRESH, "keep_rotated_days": 0},
            "store": {"timeout_seconds": STORE_TIMEOUT},
            "otp": {"verify_per_second": 0, "verify_burst": 0}}


def _env(label: str, **more: str) -> dict[str, str]:
    return {"AUTHD_KEK__PIN_FILE": str(KEK_PIN_FILE), "AUTHD_KEK__KEY_LABEL": f'"{label}"',
            "AUTHD_KEK__REFRESH_SECONDS": str(REFRESH), "AUTHD_KEK__KEEP_ROTATED_DAYS": "0",
            "AUTHD_STORE__TIMEOUT_SECONDS": str(STORE_TIMEOUT),
            "AUTHD_OTP__VERIFY_PER_SECOND": "0", "AUTHD_OTP__VERIFY_BURST": "0", **more}


def _kek_cmd(data_dir: Path, store_url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "authd.cli", "kek", *args, "--data-dir", str(data_dir),
            "--store", store_url]


def _kek(data_dir: Path, store_url: str, label: str, *args: str,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_kek_cmd(data_dir, store_url, *args),
                          env=serve_env({**_env(label), **(env or {})}), capture_output=True,
                          text=True, timeout=300)


class Devices:
    """HOTP devices and the next counter of each, verified through one backend channel."""

    def __init__(self, channel: grpc.Channel, prefix: str) -> None:
        self.stub = otp_pb2_grpc.OtpServiceStub(channel)
        self.prefix = prefix
        self.next: dict[str, int] = {}
        self.lock = threading.Lock()

    def enroll(self, branch: grpc.Channel, n: int) -> None:
        stub = otp_pb2_grpc.OtpServiceStub(branch)
        for i in range(len(self.next), len(self.next) + n):
            serial = f"{self.prefix}-{i:03d}"
            stub.Enroll(O.EnrollRequest(
                customer_id="C-1", serial=serial, operator_id="op", seed=SEED,
                parameters=O.OtpParameters(kind=O.OTP_KIND_HOTP, counter=0)), timeout=60)
            self.next[serial] = 0

    def verify(self, serial: str) -> str:
        with self.lock:
            counter = self.next[serial]
            self.next[serial] = counter + 1
        answer = self.stub.Verify(O.VerifyRequest(serial=serial, code=hotp(SEED, counter)),
                                  timeout=60)
        return O.VerifyOutcome.Name(answer.outcome)

    def verify_all(self) -> Counter[str]:
        return Counter(self.verify(serial) for serial in list(self.next))


class Verifier(threading.Thread):
    """Verifies every device in turn until stopped: what a bank's backends do meanwhile."""

    def __init__(self, devices: Devices) -> None:
        super().__init__(daemon=True)
        self.devices = devices
        self.outcomes: Counter[str] = Counter()
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            for serial in list(self.devices.next):
                try:
                    self.outcomes[self.devices.verify(serial)] += 1
                except grpc.RpcError as exc:
                    self.outcomes[f"{exc.code().name}: {exc.details()}"] += 1
                if self.halt.is_set():
                    return

    def stop(self) -> Counter[str]:
        self.halt.set()
        joined(self, 120)
        return self.outcomes


def _plaintexts(db: Database, box: SecretBox) -> dict[tuple[str, object], bytes]:
    out = {}
    for col in SEALED:
        for rows in pages(db, col, 500):
            for r in rows:
                out[(col.describe(), r[0])] = box.open(bytes(r[1]), col.aad((r[0], *r[2:])))
    return out


def _under(db: Database) -> set[int]:
    return {key for counts in count_sealed(db).values() for key in counts}


def _snapshot(db: Database) -> tuple[Any, ...]:
    raw = []
    for col in SEALED:
        for rows in pages(db, col, 500):
            raw.extend((col.describe(), r[0], bytes(r[1])) for r in rows)
    keys = db.run(read_keys, write=False)
    rotations = db.run(lambda tx: tx.all("SELECT * FROM kek_rotations ORDER BY id"), write=False)
    return sorted(raw), keys, rotations


def _audit(db: Database) -> list[tuple[str, str, str]]:
    rows = db.run(lambda tx: tx.all(
        "SELECT action, target, outcome FROM audit_records WHERE action IN (?, ?)"
        " ORDER BY id", ("kek.rotate", "kek.destroy")), write=False)
    return [(str(a), str(t), str(o)) for a, t, o in rows]


def _on_token(label: str) -> bool:
    from authd.config import SOFTHSM_MODULE

    try:
        TokenKek(SOFTHSM_MODULE, "authd-kek", label, KEK_PIN_FILE.read_text().strip(),
                 create_key=False).close()
    except KeyAbsent:
        return False
    return True


def _fill(srv: Any, devices: Devices, n: int) -> None:
    """Sealed values in every kind of record a daemon alone can make: OTP seeds, security
    card codes, the HID access-code key and a certificate one-time number."""
    devices.enroll(srv.channel("bank-a", "branch"), n)
    cards = security_card_pb2_grpc.SecurityCardServiceStub(srv.channel("bank-a", "branch"))
    cards.IssueCard(C.IssueSecurityCardRequest(customer_id="C-1",
                                               medium=C.SECURITY_CARD_MEDIUM_PRINTED))
    center = srv.app.require(HidOtpFeature).center
    assert center is not None  # this server holds the center role
    center.access_code(1234)
    srv.app.require(CertificateFeature).service.additional.numbers.issue("bank-a", "C-1", "op")


# --------------------------------------------------------------------------- online


def test_rotation_moves_every_sealed_value_while_the_daemon_serves(server, store_url):
    label = _label()
    srv = server(store_url=store_url, **_settings(label))
    devices = Devices(srv.channel("bank-a", "backend"), "OTP-ROT")
    _fill(srv, devices, 30)
    db = srv.app.db
    before = _plaintexts(db, srv.app.secrets)
    assert {c.split(".")[0] for c, _ in before} >= {
        "otp_devices", "security_cards", "hid_keys", "certificate_one_time_numbers"}
    assert _under(db) == {1}

    verifier = Verifier(devices)
    verifier.start()
    done = _kek(srv.config.data_dir, store_url, label, "rotate", "--batch-size", "4")
    outcomes = verifier.stop()
    assert done.returncode == 0, done.stderr
    # Verification went on throughout, every answer right.
    assert outcomes["VERIFY_OUTCOME_ACCEPTED"] > 0 and set(outcomes) == {
        "VERIFY_OUTCOME_ACCEPTED"}, outcomes

    keys = {k.id: k for k in db.run(read_keys, write=False)}
    assert keys[1].state == "destroyed" and keys[2].state == "active"
    assert _under(db) == {2}
    assert not _on_token(label) and _on_token(keys[2].key_label)
    fresh = open_secret_box(srv.config, db)  # a node started now holds key 2 alone
    try:
        assert fresh.key_ids() == [2]
        assert _plaintexts(db, fresh) == before
    finally:
        fresh.close()
    assert _audit(db) == [("kek.rotate", "kek:2", "started"), ("kek.rotate", "kek:2", "activated"),
                          ("kek.rotate", "kek:2", "rewrapped"), ("kek.destroy", "kek:1", "ok"),
                          ("kek.rotate", "kek:2", "done")]
    # The serving daemon dropped key 1 and seals under key 2.
    assert devices.verify_all() == Counter({"VERIFY_OUTCOME_ACCEPTED": len(devices.next)})
    devices.enroll(srv.channel("bank-a", "branch"), 1)
    assert _under(db) == {2}
    status = _kek(srv.config.data_dir, store_url, label, "status")
    assert status.returncode == 0, status.stderr
    assert "key 1: destroyed" in status.stdout and "key 2: active" in status.stdout


# --------------------------------------------------------------------------- crashes


@pytest.mark.parametrize("kill_at", ["waiting", "moved"])
def test_a_killed_rotation_finishes_when_run_again(server, store_url, kill_at):
    label = _label()
    srv = server(store_url=store_url, **_settings(label))
    devices = Devices(srv.channel("bank-a", "backend"), "OTP-KILL")
    _fill(srv, devices, 25)
    db = srv.app.db
    before = _plaintexts(db, srv.app.secrets)

    proc = subprocess.Popen(_kek_cmd(srv.config.data_dir, store_url, "rotate",
                                     "--batch-size", "1"),
                            env=serve_env(_env(label)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith(kill_at):
            proc.kill()  # SIGKILL: no cleanup of any kind
            break
    assert proc.wait(60) == -9, (seen, proc.stderr.read() if proc.stderr else "")

    stopped = db.run(open_rotation, write=False)
    assert stopped is not None and stopped.state == "rewrapping"
    # Mid-rotation the daemon opens values of both keys.
    assert devices.verify_all() == Counter({"VERIFY_OUTCOME_ACCEPTED": len(devices.next)})
    if kill_at == "moved":
        assert _under(db) == {1, 2}

    again = _kek(srv.config.data_dir, store_url, label, "rotate")
    assert again.returncode == 0, again.stderr
    assert "resuming the rotation from key 1 to key 2" in again.stdout
    assert _under(db) == {2}
    assert not _on_token(label)
    fresh = open_secret_box(srv.config, db)
    try:
        assert _plaintexts(db, fresh) == before
    finally:
        fresh.close()
    assert devices.verify_all() == Counter({"VERIFY_OUTCOME_ACCEPTED": len(devices.next)})


def test_each_step_is_finished_by_a_new_process(server, store_url):
    """A rotation stopped after any step (and between the token's work and the store's record
    of it) is finished by the next one: each step here runs with a box of its own."""
    label = _label()
    srv = server(store_url=store_url, **_settings(label))
    devices = Devices(srv.channel("bank-a", "backend"), "OTP-STEP")
    _fill(srv, devices, 5)
    cfg, db = srv.config, srv.app.db
    before = _plaintexts(db, srv.app.secrets)
    lines: list[str] = []

    def one_step(first: bool = False) -> str:
        box = open_secret_box(cfg, db)
        try:
            with rotation_lock(db):
                rotation = Rotation(cfg, db, box, say=lines.append, batch=2)
                rotation.grace = 0.0
                row = rotation.begin() if first else db.run(open_rotation, write=False)
                assert row is not None
                if not first:
                    row = rotation.step(row)
                return row.state
        finally:
            box.close()

    assert one_step(first=True) == "creating"
    new_label = next(k.key_label for k in db.run(read_keys, write=False) if k.id == 2)
    create_token_key(cfg, new_label).close()  # the token's work done, the store's not
    assert one_step() == "rewrapping"
    assert devices.verify_all()["VERIFY_OUTCOME_ACCEPTED"] == len(devices.next)
    assert one_step() == "destroying"
    assert destroy_token_key(cfg, label)  # destroyed, and the process died before recording
    assert one_step() == DONE
    assert _under(db) == {2} and db.run(open_rotation, write=False) is None
    fresh = open_secret_box(cfg, db)
    try:
        assert _plaintexts(db, fresh) == before
    finally:
        fresh.close()
    assert devices.verify_all()["VERIFY_OUTCOME_ACCEPTED"] == len(devices.next)


# --------------------------------------------------------------------------- bad input


def test_bad_input_gets_a_clear_error_and_changes_nothing(server, store_url, tmp_path):
    label = _label()
    srv = server(store_url=store_url, **_settings(label))
    devices = Devices(srv.channel("bank-a", "backend"), "OTP-BAD")
    _fill(srv, devices, 3)
    db, data_dir = srv.app.db, srv.config.data_dir
    snapshot = _snapshot(db)

    def refused(proc: subprocess.CompletedProcess[str], words: str) -> None:
        assert proc.returncode == 2, (proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith("authd: ")]
        assert len(errors) == 1 and words in errors[0], proc.stderr
        assert _snapshot(db) == snapshot

    wrong = tmp_path / "wrong.pin"
    wrong.write_text("000000\n")
    os.chmod(wrong, 0o600)
    refused(_kek(data_dir, store_url, label, "rotate", env={"AUTHD_KEK__PIN_FILE": str(wrong)}),
            "wrong PIN")
    refused(_kek(data_dir, store_url, label, "rotate",
                 env={"AUTHD_KEK__TOKEN_LABEL": '"no-such-token"'}),
            "token 'no-such-token' is missing")
    with rotation_lock(db):
        refused(_kek(data_dir, store_url, label, "rotate"),
                "another key-encryption-key rotation is running")
    assert _on_token(label)
    assert devices.verify_all() == Counter({"VERIFY_OUTCOME_ACCEPTED": len(devices.next)})


# --------------------------------------------------------------------------- two nodes


def test_two_center_nodes_share_the_key_through_one_token_directory(tmp_path, pg_url):
    label = _label()
    env = _env(label)
    a = Node(tmp_path / "a", pg_url, env)
    b = Node(tmp_path / "b", pg_url, env)
    try:
        at_a = Devices(a.channel("bank-a", "backend"), "OTP-TWO")
        at_a.enroll(a.channel("bank-a", "branch"), 20)
        at_b = Devices(b.channel("bank-a", "backend"), "OTP-TWO")
        at_b.next = at_a.next  # the same devices, one counter each
        at_b.lock = at_a.lock
        db = open_database(pg_url)
        try:
            assert _under(db) == {1}
            verifier = Verifier(at_b)
            verifier.start()
            done = _kek(a.data_dir, pg_url, label, "rotate", "--batch-size", "3")
            outcomes = verifier.stop()
            assert done.returncode == 0, done.stderr
            assert outcomes["VERIFY_OUTCOME_ACCEPTED"] > 0 and set(outcomes) == {
                "VERIFY_OUTCOME_ACCEPTED"}, outcomes
            assert _under(db) == {2} and not _on_token(label)
            # Node b seals under key 2 and node a opens it; both verify every device.
            at_b.enroll(b.channel("bank-a", "branch"), 1)
            assert _under(db) == {2}
            assert at_a.verify_all() == Counter({"VERIFY_OUTCOME_ACCEPTED": 21})
            assert at_b.verify_all() == Counter({"VERIFY_OUTCOME_ACCEPTED": 21})
        finally:
            db.close()
        assert b.terminate() == 0
        b = Node(tmp_path / "b", pg_url, env)  # a node started after the rotation
        at_b = Devices(b.channel("bank-a", "backend"), "OTP-TWO")
        at_b.next, at_b.lock = at_a.next, at_a.lock
        assert at_b.verify_all() == Counter({"VERIFY_OUTCOME_ACCEPTED": 21})
    finally:
        a.kill()
        b.kill()
