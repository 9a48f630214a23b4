"""The store failing under a running daemon: a frozen PostgreSQL, and full disks.

A frozen store answers within the store's timeout (UNAVAILABLE) instead of holding calls until
the client's deadline, calls that need no store keep working, and health follows the store. A
full disk answers UNAVAILABLE, on SQLite (a small tmpfs holding the database) and on
PostgreSQL (a tablespace on a small tmpfs); both need the mount privilege of root.
"""

from __future__ import annotations

import errno
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from authd.errors import details_of
from authd.v1 import otp_pb2 as O
from authd.v1 import otp_pb2_grpc, token_pb2, token_pb2_grpc
from tests.conftest import wait_for
from tests.pgcluster import PgCluster, start_pg_cluster

SEED = bytes(range(1, 21))
HOTP = O.OtpParameters(kind=O.OTP_KIND_HOTP)
OTP = "authd.v1.OtpService"
TOKENS = "authd.v1.TokenService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def health_of(srv: Any, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(srv.channel())
    return int(stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status)


# --------------------------------------------------------------------------- a frozen store


def _cluster_pids(cluster: PgCluster) -> list[int]:
    """The postmaster and every process it started."""
    assert cluster.directory is not None
    postmaster = int((cluster.directory / "postmaster.pid").read_text().split()[0])
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            children.append(int(stat.parent.name))
    return [postmaster, *children]


@pytest.fixture
def frozen_pg() -> Iterator[tuple[PgCluster, list[int]]]:
    """A PostgreSQL cluster of this test's own (the session's is never frozen); the list is
    filled with the pids the test stops, and they are always continued."""
    root = Path(tempfile.mkdtemp(prefix="authd-pg-frozen-"))
    cluster = start_pg_cluster(root)
    stopped: list[int] = []
    try:
        yield cluster, stopped
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        if cluster._stop:
            cluster._stop()
        shutil.rmtree(root, ignore_errors=True)


def test_a_frozen_postgresql_answers_in_time_and_store_free_calls_go_on(server, frozen_pg):
    cluster, stopped = frozen_pg
    srv = server(store_url=cluster.url(cluster.create_database()), server={"max_workers": 4},
                 store={"timeout_seconds": 2.0, "health_interval_seconds": 0.3})
    branch = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "branch"))
    branch.Enroll(O.EnrollRequest(customer_id="C-1", serial="OTP-FROZEN", operator_id="op",
                                  seed=SEED, parameters=HOTP), timeout=30)
    backend = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "backend"))
    tokens = token_pb2_grpc.TokenServiceStub(srv.channel("bank-a", "branch"))
    assert health_of(srv, OTP) == SERVING

    pids = _cluster_pids(cluster)
    for pid in pids:  # SIGSTOP: the store neither answers nor closes its connections
        os.kill(pid, signal.SIGSTOP)
        stopped.append(pid)

    def timed(call: Any) -> tuple[str, float, str]:
        started = time.monotonic()
        try:
            call()
            code, details = "OK", ""
        except grpc.RpcError as err:
            code, details = err.code().name, err.details() or ""
        return code, time.monotonic() - started, details

    status = O.GetStatusRequest(serial="OTP-FROZEN")
    store_calls = [lambda: branch.GetStatus(status, timeout=60)] * 12 + [
        lambda: backend.Verify(O.VerifyRequest(serial="OTP-FROZEN", code="000000"),
                               timeout=60)] * 4
    with ThreadPoolExecutor(max_workers=24) as pool:
        stuck = [pool.submit(timed, call) for call in store_calls]  # more than store threads
        time.sleep(0.5)
        # Meanwhile, calls that need no store answer at once, on their own threads.
        for _ in range(5):
            code, took, _ = timed(lambda: tokens.ListTokens(token_pb2.ListTokensRequest(),
                                                             timeout=60))
            assert code == "OK" and took < 10
        assert wait_for(lambda: health_of(srv, OTP) == NOT_SERVING, timeout=20)
        assert health_of(srv, "") == NOT_SERVING  # a center node: overall too
        assert health_of(srv, TOKENS) == SERVING
        answers = [future.result() for future in stuck]
    for code, took, details in answers:
        assert code == "UNAVAILABLE", (code, details)
        assert "store is unavailable" in details or "could not record" in details, details
        assert took < 30  # the server's timeout, not the client's 60 s deadline

    for pid in reversed(stopped):
        os.kill(pid, signal.SIGCONT)
    stopped.clear()
    assert wait_for(lambda: health_of(srv, OTP) == SERVING, timeout=30)
    assert health_of(srv, "") == SERVING
    assert branch.GetStatus(status, timeout=30).serial == "OTP-FROZEN"


# --------------------------------------------------------------------------- full disks


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A 32 MiB tmpfs of this test's own (root may mount one; the test fails otherwise)."""
    root = Path(tempfile.mkdtemp(prefix="authd-small-disk-"))
    postgres = pwd.getpwnam("postgres")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size=32m,mode=0755,uid={postgres.pw_uid}", "tmpfs",
         str(root)], capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.fail(f"a full-disk test needs to mount a small tmpfs: {mounted.stderr.strip()}")
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root)], capture_output=True, check=False)
        root.rmdir()


def fill(disk: Path) -> Path:
    """Take every free byte of ``disk`` with one file; returns it."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as fh:
        for chunk in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    fh.write(b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


@pytest.fixture
def small_pg_url(pg_cluster: PgCluster, small_disk: Path) -> Iterator[str]:
    """A database whose tables live in a tablespace on the small disk."""
    space = small_disk / "tablespace"
    space.mkdir()
    shutil.chown(space, "postgres")
    name = f"authd_full_{os.getpid()}_{int(time.monotonic() * 1000)}"
    pg_cluster.admin(f"CREATE TABLESPACE {name} LOCATION '{space}'")
    pg_cluster.admin(f"CREATE DATABASE {name} TABLESPACE {name}")
    try:
        yield pg_cluster.url(name)
    finally:
        (small_disk / "filler").unlink(missing_ok=True)
        pg_cluster.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        pg_cluster.admin(f"DROP TABLESPACE IF EXISTS {name}")


def _enroll(stub: Any, serial: str) -> None:
    stub.Enroll(O.EnrollRequest(customer_id="C-1", serial=serial, operator_id="op", seed=SEED,
                                parameters=HOTP), timeout=30)


def _disk_full_is_unavailable(srv: Any, disk: Path) -> None:
    branch = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "branch"))
    backend = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "backend"))
    _enroll(branch, "OTP-DISK-0")
    filler = fill(disk)
    refused: grpc.RpcError | None = None
    for i in range(1, 2000):  # until the store needs a page the disk does not have
        try:
            _enroll(branch, f"OTP-DISK-{i}")
        except grpc.RpcError as err:
            refused = err
            break
    assert refused is not None, "the store never ran out of space"
    assert refused.code() == grpc.StatusCode.UNAVAILABLE, refused.details()
    assert "disk full" in (refused.details() or "")
    assert details_of(refused).reason == "STORE_UNAVAILABLE"
    # A verification counts a failure: it cannot be written either, and says so.
    with pytest.raises(grpc.RpcError) as err:
        for _ in range(50):
            backend.Verify(O.VerifyRequest(serial="OTP-DISK-0", code="000000"), timeout=30)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value.details()
    filler.unlink()  # space again: the same daemon writes again
    _enroll(branch, "OTP-DISK-AFTER")
    assert branch.GetStatus(O.GetStatusRequest(serial="OTP-DISK-AFTER"),
                            timeout=30).serial == "OTP-DISK-AFTER"


def test_a_full_disk_is_unavailable_on_sqlite(server, small_disk: Path) -> None:
    srv = server(store_url=f"sqlite:///{small_disk / 'authd.db'}")
    _disk_full_is_unavailable(srv, small_disk)


def test_a_full_disk_is_unavailable_on_postgresql(small_pg_url: str, small_disk: Path,
                                                  server) -> None:
    srv = server(store_url=small_pg_url)
    _disk_full_is_unavailable(srv, small_disk)
