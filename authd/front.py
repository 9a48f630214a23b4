"""The native front end: ``authd-front`` (``native/front/``), started and watched by the daemon.

With ``[server] front = "native"`` the node's public port belongs to authd-front, a C++ gRPC
server built from Debian's packaged gRPC (``native/front/build.sh``, run by
``scripts/setup.sh``). It owns TLS and the client certificate (the caller, parsed once per
certificate), serves ``OtpService`` Verify, VerifyBatch and VerifyStream itself — admission,
deadlines, batching — by handing the verifications to this daemon's engine over a private Unix
socket (``authd/otp/link.py``), hands ``TokenService`` Sign and SignStream and
``SmartcardService`` Transmit and TransmitStream to this daemon over a third
(``authd/call_link.py``), and forwards every other call, as raw
bytes, to this daemon's own gRPC server, which then listens only on a second Unix socket.
The sockets are in a private run directory (mode 0700); the daemon's server accepts a call
only with the random token it gave the front end, and takes the caller from the front end's
``x-authd-*-bin`` metadata. A token login lent to the front end carries its user PIN over the
call link, to the peer whose pid is this front end's only (authd/token/lending.py); the front
end wipes it once its own module instance is logged in (docs/token.md, "PIN").

The daemon starts the front end once its features run, restarts it on the same port if it
dies (after 0.1 s, doubling while it keeps dying, at most 5 s), and stops it with SIGTERM
first on shutdown (in-flight calls finish within ``grace_seconds``). The front end exits when
the daemon dies. Its own messages (plain lines) go to the daemon's stderr. It counts every call
it answers into ``front.tally`` in the run directory, which the daemon's metrics endpoint
serves as ``authd_front_answers_total`` (authd/front_tally.py).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

from authd.config import Config
from authd.front_tally import open_tally
from devices.errors import BadRequest

log = logging.getLogger("authd.front")

READY = "authd-front listening on port "
SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes


def make_run_dir(data_dir: Path) -> Path:
    """The private directory of the front end's sockets: ``data_dir/run``, or a fresh one in
    the system's temporary directory when that path is too long for a Unix socket."""
    run = data_dir.resolve() / "run"
    if len(str(run / "engine.sock")) > SOCKET_PATH_MAX:
        return Path(tempfile.mkdtemp(prefix="authd-run-"))
    run.mkdir(mode=0o700, parents=True, exist_ok=True)
    run.chmod(0o700)
    return run


def find_binary(config: Config) -> Path:
    if config.server.front_binary:
        path = Path(config.server.front_binary)
        if not os.access(path, os.X_OK):
            raise BadRequest(f"server.front_binary {path} is not an executable program")
        return path
    built = Path(__file__).resolve().parent.parent / "native" / "build" / "authd-front"
    if os.access(built, os.X_OK):
        return built
    found = shutil.which("authd-front")
    if found:
        return Path(found)
    raise BadRequest("front = 'native' needs the authd-front program: build it with "
                     "`bash native/front/build.sh` (scripts/setup.sh does) or set "
                     "server.front_binary")


class NativeFront:
    """One authd-front process serving ``listen``, restarted if it dies."""

    def __init__(self, config: Config, daemon_socket: Path, args: list[str],
                 token: str) -> None:
        self._binary = find_binary(config)
        self._config = config
        self._daemon = daemon_socket
        self._args = list(args)
        self._token = token
        self._proc: subprocess.Popen[str] | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self.port = 0
        self.restarts = 0
        self.tally = open_tally(daemon_socket.parent / "front.tally")

    def _command(self, listen: str) -> list[str]:
        s = self._config.server
        cmd = [str(self._binary), f"--listen={listen}", f"--daemon=unix:{self._daemon}",
               f"--grace-ms={int(s.grace_seconds * 1000)}", f"--tally={self.tally.path}",
               f"--queues={s.front_queues}",
               *self._args]
        if s.insecure:
            return [*cmd, "--insecure"]
        from authd.server import tls_paths

        cert, key, ca = tls_paths(self._config)
        return [*cmd, f"--tls-cert={cert}", f"--tls-key={key}", f"--client-ca={ca}"]

    def _spawn(self, listen: str) -> tuple[subprocess.Popen[str], int]:
        proc = subprocess.Popen(self._command(listen), stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "AUTHD_FRONT_TOKEN": self._token})
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith(READY):
            proc.kill()
            proc.wait()
            raise BadRequest(f"authd-front did not start on {listen} (see its message above)")
        return proc, int(line[len(READY):])

    def start(self) -> int:
        """Start the front end on ``[server] listen``; returns its port."""
        self._proc, self.port = self._spawn(self._config.server.listen)
        self._watcher = threading.Thread(target=self._watch, name="authd-front-watch",
                                         daemon=True)
        self._watcher.start()
        return self.port

    def _watch(self) -> None:
        delay = 0.1
        host = self._config.server.listen.rsplit(":", 1)[0]
        while True:
            proc = self._proc
            assert proc is not None
            code = proc.wait()
            if self._stopping.is_set():
                return
            log.error("authd-front exited with %s; restarting it in %.1f s", code, delay)
            if self._stopping.wait(delay):
                return
            try:
                self._proc, _ = self._spawn(f"{host}:{self.port}")
                self.restarts += 1
                delay = 0.1
            except (BadRequest, OSError) as exc:
                log.error("authd-front could not be restarted: %s", exc)
                delay = min(delay * 2, 5.0)

    def pid(self) -> int:
        return self._proc.pid if self._proc is not None else 0

    def stop(self, grace: float) -> None:
        """SIGTERM: the front end lets calls in flight finish (``grace`` s), then exits."""
        self._stopping.set()
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace + 10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._watcher is not None:
            self._watcher.join(5)
        self.tally.close()
