"""SoftHSM2 tokens for the demo and the tests, in a directory of their own.

SoftHSM2 reads ``SOFTHSM2_CONF`` once, when a process first initializes the library,
so one process has one SoftHSM configuration: the daemon's key-encryption-key token
and the simulated customer tokens share its token directory (different labels).
:func:`process_env` gives that one environment; it adopts an existing
``SOFTHSM2_CONF`` made by this module and never the system's ``/etc/softhsm``.

Plug and unplug move a token's directory out of and back into the token directory;
a module that rescans by re-initializing (see drivers.pkcs11) then sees it come and go.
Tokens are created by ``softhsm2-util`` in a child process, so creating one never
disturbs the library state of this process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
CONF_NAME = "softhsm2.conf"
MARKER = "# authd simulated SoftHSM2 environment"
DEFAULT_PIN = "123456"
DEFAULT_SO_PIN = "12345678"
_SYSTEM_DIRS = ("/etc/softhsm", "/var/lib/softhsm")


@dataclass(frozen=True)
class SimToken:
    label: str
    serial: str
    pin: str
    so_pin: str
    directory: str  # the token's directory name inside the token dir


class SoftHsmEnv:
    """A SoftHSM2 configuration and token directory under ``root``."""

    def __init__(self, root: str | os.PathLike[str], *, disabled_mechanisms: tuple[str, ...] = ()) -> None:
        self.root = Path(root).resolve()
        if any(str(self.root).startswith(d) for d in _SYSTEM_DIRS):
            raise ValueError("refusing to use the system's SoftHSM directories")
        self.token_dir = self.root / "tokens"
        self.unplugged_dir = self.root / "unplugged"
        self.conf_path = self.root / CONF_NAME
        self.module = MODULE
        self._lock = threading.Lock()
        self._tokens: dict[str, SimToken] = {}
        self.token_dir.mkdir(parents=True, exist_ok=True)
        self.unplugged_dir.mkdir(parents=True, exist_ok=True)
        if not self.conf_path.exists():
            mechanisms = ",".join(["ALL", *(f"-{m}" for m in disabled_mechanisms)])
            self.conf_path.write_text(
                f"{MARKER}\n"
                f"directories.tokendir = {self.token_dir}\n"
                "objectstore.backend = file\n"
                "log.level = ERROR\n"
                "slots.removable = true\n"
                f"slots.mechanisms = {mechanisms}\n"
                "library.reset_on_fork = false\n"
            )

    @classmethod
    def adopt(cls, conf_path: str | os.PathLike[str]) -> SoftHsmEnv:
        """Use an environment this module created earlier (identified by its marker line)."""
        conf = Path(conf_path)
        text = conf.read_text()
        if MARKER not in text or conf.name != CONF_NAME:
            raise ValueError(f"{conf} is not a simulated SoftHSM2 environment")
        return cls(conf.parent)

    @property
    def env(self) -> dict[str, str]:
        return {"SOFTHSM2_CONF": str(self.conf_path)}

    def activate(self) -> None:
        """Point this process at the environment (before the library is first initialized)."""
        os.environ["SOFTHSM2_CONF"] = str(self.conf_path)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args), env={**os.environ, **self.env}, capture_output=True, text=True, timeout=60, check=False
        )

    def init_token(self, label: str, pin: str = DEFAULT_PIN, so_pin: str = DEFAULT_SO_PIN) -> SimToken:
        """Create and initialize a token in a free slot (like a blank token from the factory)."""
        with self._lock:
            before = set(os.listdir(self.token_dir))
            done = self._run(
                "softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", so_pin, "--pin", pin
            )
            if done.returncode != 0:
                raise RuntimeError(f"softhsm2-util --init-token failed: {done.stderr.strip() or done.stdout.strip()}")
            created = sorted(set(os.listdir(self.token_dir)) - before)
            if len(created) != 1:
                raise RuntimeError("could not find the new token's directory")
            directory = created[0]
            token = SimToken(label, directory.replace("-", "")[-16:], pin, so_pin, directory)
            self._tokens[token.serial] = token
            return token

    def create_tokens(self, count: int, prefix: str = "customer") -> list[SimToken]:
        return [self.init_token(f"{prefix}-{i + 1}") for i in range(count)]

    def tokens(self) -> list[SimToken]:
        with self._lock:
            return list(self._tokens.values())

    def is_plugged(self, token: SimToken) -> bool:
        return (self.token_dir / token.directory).is_dir()

    def unplug(self, token: SimToken) -> None:
        """Pull the token out (its directory leaves the token directory)."""
        src = self.token_dir / token.directory
        if src.is_dir():
            shutil.move(str(src), str(self.unplugged_dir / token.directory))

    def plug(self, token: SimToken) -> None:
        """Insert the token again."""
        src = self.unplugged_dir / token.directory
        if src.is_dir():
            shutil.move(str(src), str(self.token_dir / token.directory))

    def remove(self, token: SimToken) -> None:
        """Destroy the token for good."""
        for base in (self.token_dir, self.unplugged_dir):
            shutil.rmtree(base / token.directory, ignore_errors=True)
        with self._lock:
            self._tokens.pop(token.serial, None)

    def pkcs11_tool(self, *args: str, module: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run OpenSC's pkcs11-tool against this environment."""
        return self._run("pkcs11-tool", "--module", module or self.module, *args)


_process_env: SoftHsmEnv | None = None
_process_lock = threading.Lock()


def process_env() -> SoftHsmEnv:
    """The one simulated environment of this process (adopted from SOFTHSM2_CONF or made in tmp)."""
    global _process_env
    with _process_lock:
        if _process_env is None:
            current = os.environ.get("SOFTHSM2_CONF")
            if current and Path(current).is_file():
                try:
                    _process_env = SoftHsmEnv.adopt(current)
                except ValueError:
                    _process_env = None
            if _process_env is None:
                _process_env = SoftHsmEnv(tempfile.mkdtemp(prefix="authd-softhsm-"))
                _process_env.activate()
        return _process_env
