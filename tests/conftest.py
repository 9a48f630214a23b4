"""Shared fixtures: a SoftHSM2 environment, a PostgreSQL cluster, stores and real servers.

Every test can run alone and in any order: each gets its own data directory and database.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from authd import config as configmod
from authd.client import dev_channel
from authd.server import BackgroundServer
from simulators.token.softhsm import SoftHsmEnvironment
from tests.pcsc_env import PCSCD  # noqa: F401  (every PC/SC client of the run: its own pcscd)
from tests.pgcluster import PgCluster, PgUnavailable, start_pg_cluster

# --------------------------------------------------------------------------- options


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--hardware", action="store_true",
                     help="also run tests that need real devices (tests/hardware)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--hardware"):
        return
    skip = pytest.mark.skip(reason="needs real hardware: run with --hardware")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)


# --------------------------------------------------------------------------- SoftHSM2

_SESSION_ROOT = Path(tempfile.mkdtemp(prefix="authd-tests-"))
# SoftHSM2 reads SOFTHSM2_CONF once per process: the whole test session shares one token
# directory of its own (never the system's); tests use distinct token labels.
SOFTHSM = SoftHsmEnvironment(_SESSION_ROOT / "softhsm")
SOFTHSM.activate()
KEK_PIN_FILE = _SESSION_ROOT / "kek.pin"


@pytest.fixture(scope="session")
def softhsm() -> SoftHsmEnvironment:
    return SOFTHSM


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_SESSION_ROOT, ignore_errors=True)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave the run with its status once everything is reported, without the C library's exit.

    Threads the tests leave behind (gRPC's pollers, a token's signer threads, daemon threads of
    in-process servers) may still be inside a PKCS#11 module when the C library's exit handlers
    destroy SoftHSM2's static objects and OpenSSL's state, in an order that depends on which
    was loaded first (SoftHSMv2 issues 635 and 729): the process then dies of SIGSEGV after the
    summary, turning a green run red. The Python-level exit functions (the private pcscd
    stopped by its PID) run first; the C-level teardown is skipped.
    """
    import atexit
    import sys

    session = getattr(config, "_authd_session", None)
    status = int(getattr(session, "exitstatus", 0)) if session is not None else 0
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    session.config._authd_session = session  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    external = os.environ.get("AUTHD_TEST_PG_URL")  # postgresql://user@host:port (no db)
    if external:
        yield PgCluster(external.rstrip("/"), None, None)
        return
    root = Path(tempfile.mkdtemp(prefix="authd-pg-"))
    try:
        cluster = start_pg_cluster(root)
    except PgUnavailable as exc:
        # a PostgreSQL test that cannot start its cluster did not run: that is a failure
        pytest.fail(f"PostgreSQL test cluster did not start: {exc}", pytrace=False)
    try:
        yield cluster
    finally:
        if cluster._stop:
            cluster._stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> Iterator[str]:
    name = pg_cluster.create_database()
    yield pg_cluster.url(name)
    try:
        pg_cluster.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    except Exception:
        pass


@pytest.fixture(scope="session")
def native_front() -> Path:
    """The authd-front program of this tree, built now if it is missing or older than its
    sources (native/front/build.sh does nothing when it is up to date)."""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(["bash", str(root / "native" / "front" / "build.sh")],
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, f"native/front/build.sh failed:\n{done.stdout}{done.stderr}"
    binary = root / "native" / "build" / "authd-front"
    assert os.access(binary, os.X_OK), binary
    return binary


@pytest.fixture(params=["python", "native"])
def front(request: pytest.FixtureRequest) -> str:
    """Who serves the port: the daemon's own gRPC server, or the native front end
    (authd-front, built for the session) in front of it ([server] front)."""
    if request.param == "native":
        request.getfixturevalue("native_front")
    return str(request.param)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'authd.db'}"
    return str(request.getfixturevalue("pg_url"))


# --------------------------------------------------------------------------- servers


def make_config(data_dir: Path, store_url: str | None = None,
                **overrides: Any) -> configmod.Config:
    """A configuration for an in-process test server: insecure dev mode on a free port,
    simulators on, the session's SoftHSM2 token as key-encryption key."""
    if not KEK_PIN_FILE.exists():
        KEK_PIN_FILE.write_text(secrets.token_hex(8))
        os.chmod(KEK_PIN_FILE, 0o600)
    raw: dict[str, Any] = {
        "data_dir": str(data_dir),
        "simulators": True,
        "server": {"listen": "127.0.0.1:0", "insecure": True, "grace_seconds": 1.0},
        "kek": {"pin_file": str(KEK_PIN_FILE)},
    }
    if store_url:
        raw["store"] = {"url": store_url}
    for key, value in overrides.items():
        if isinstance(value, dict):
            raw[key] = {**raw.get(key, {}), **value}
        else:
            raw[key] = value
    return configmod.load(None, environ={}, overrides=raw)


class TestServer:
    __test__ = False

    def __init__(self, config: configmod.Config) -> None:
        self.config = config
        self._bg = BackgroundServer(config)
        self._channels: list[grpc.Channel] = []
        self._stopped = False

    @property
    def port(self) -> int:
        return self._bg.port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def app(self) -> Any:
        return self._bg.app

    def channel(self, institution: str = "bank-a", role: str = "branch",
                subject: str = "test") -> grpc.Channel:
        ch = dev_channel(self.address, institution, role, subject)
        self._channels.append(ch)
        return ch

    def stop(self) -> None:
        """Stop the server (a test may stop it before the fixture does)."""
        if self._stopped:
            return
        self._stopped = True
        for ch in self._channels:
            ch.close()
        self._channels.clear()
        self._bg.stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Callable[..., TestServer]]:
    """Factory: ``server(store_url=None, **config_overrides)`` starts a real authd on port 0."""
    started: list[TestServer] = []

    def make(store_url: str | None = None, **overrides: Any) -> TestServer:
        data_dir = tmp_path / f"node{len(started)}"
        srv = TestServer(make_config(data_dir, store_url, **overrides))
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it holds (True); fail the test when it has not within
    ``timeout`` seconds, naming the condition (a wait that falls through would hide it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    if predicate():
        return True
    code = getattr(predicate, "__code__", None)
    where = f" ({Path(code.co_filename).name}:{code.co_firstlineno})" if code else ""
    raise AssertionError(f"the condition{where} did not hold within {timeout:g} s")


def joined(thread: threading.Thread, timeout: float) -> None:
    """Join ``thread``; fail the test when it is still running after ``timeout`` seconds (its
    results would be read half-made)."""
    thread.join(timeout)
    assert not thread.is_alive(), f"thread {thread.name} still running after {timeout:g} s"
