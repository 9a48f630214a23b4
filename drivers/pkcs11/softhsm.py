"""SoftHSM2 environments of the daemon's own: a configuration and token directory (never the
system's), and tokens made by ``softhsm2-util`` in a child process.

SoftHSM2 reads ``SOFTHSM2_CONF`` once, when the library is initialized in a process, so one
process sees one token directory. The embedded default keeps its key-encryption-key token in
such an environment; ``simulators/token`` adds customers' tokens that are plugged and unplugged.
Creating a token in a child process never disturbs the library state of this process.
"""


from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from drivers.errors import DeviceIOError

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
UTIL = "softhsm2-util"
DEFAULT_PIN = "123456"
DEFAULT_SO_PIN = "12345678"
_SYSTEM_DIRS = ("/etc/softhsm", "/var/lib/softhsm")


@dataclass(frozen=True)
class SoftHsmToken:
    label: str
    serial: str
    slot: int
    # Set for tokens this process initialized (the simulator knows its own tokens' PINs).
    pin: str = field(default="", repr=False)
    so_pin: str = field(default="", repr=False)
    directory: str = ""  # the token's directory inside the token dir


class SoftHsmEnvironment:
    """A SoftHSM2 configuration rooted at ``root`` (conf file + token directory)."""

    def __init__(self, root: Path, *, mechanisms: tuple[str, ...] = ()) -> None:
        self.root = Path(root).resolve()
        if str(self.root).startswith(_SYSTEM_DIRS):
            raise ValueError("refusing to use the system's SoftHSM2 directories")
        self.conf = self.root / "softhsm2.conf"
        self.token_dir = self.root / "tokens"
        self.unplugged_dir = self.root / "unplugged"
        self.module = MODULE
        # Only these CKM_* names (all when empty): a token lacking a mechanism, for tests.
        self.mechanisms = mechanisms
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls) -> Self | None:
        """The environment named by ``SOFTHSM2_CONF``, if it is one of ours (not the system's)."""
        conf = os.environ.get("SOFTHSM2_CONF")
        if not conf or Path(conf).resolve().parent.as_posix().startswith(_SYSTEM_DIRS):
            return None
        return cls(Path(conf).parent)

    @property
    def env(self) -> dict[str, str]:
        return {"SOFTHSM2_CONF": str(self.conf)}

    def ensure(self) -> Self:
        self.token_dir.mkdir(parents=True, exist_ok=True)
        self.unplugged_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        if not self.conf.exists():
            mechanisms = ",".join(self.mechanisms) or "ALL"
            self.conf.write_text(
                f"directories.tokendir = {self.token_dir}\n"
                "objectstore.backend = file\n"
                "log.level = ERROR\n"
                "slots.removable = true\n"
                f"slots.mechanisms = {mechanisms}\n"
            )
        return self

    def activate(self) -> None:
        """Point this process's SoftHSM2 at this environment (before the library is loaded)."""
        self.ensure()
        os.environ["SOFTHSM2_CONF"] = str(self.conf)

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        if shutil.which(program) is None:
            raise DeviceIOError(f"{program} is not installed")
        env = dict(os.environ, SOFTHSM2_CONF=str(self.conf))
        return subprocess.run(
            [program, *args], env=env, capture_output=True, text=True, check=False, timeout=120
        )

    def _util(self, *args: str) -> str:
        proc = self._run(UTIL, *args)
        if proc.returncode != 0:
            # softhsm2-util never echoes PINs; its message names the failing step.
            raise DeviceIOError(f"softhsm2-util {args[0]} failed: {proc.stderr.strip()[:200]}")
        return proc.stdout

    def tokens(self) -> list[SoftHsmToken]:
        """Initialized (plugged-in) tokens, from ``softhsm2-util --show-slots``."""
        self.ensure()
        out = self._util("--show-slots")
        found = []
        for block in re.split(r"\n(?=Slot )", out):
            slot = re.match(r"Slot (\d+)", block)
            label = re.search(r"^\s*Label:\s*(.*?)\s*$", block, re.M)
            serial = re.search(r"^\s*Serial number:\s*(\S*)", block, re.M)
            initialized = re.search(r"^\s*Initialized:\s*yes", block, re.M)
            if slot and label and initialized and label.group(1):
                found.append(
                    SoftHsmToken(
                        label.group(1), serial.group(1) if serial else "", int(slot.group(1))
                    )
                )
        return found

    def has_token(self, label: str) -> bool:
        return any(t.label == label for t in self.tokens())

    def init_token(
        self, label: str, pin: str = DEFAULT_PIN, so_pin: str = DEFAULT_SO_PIN
    ) -> SoftHsmToken:
        """Initialize a new token in the first free slot (a blank token from the factory)."""
        self.ensure()
        with self._lock:
            before = set(os.listdir(self.token_dir))
            self._util("--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", so_pin)
            created = sorted(set(os.listdir(self.token_dir)) - before)
        # SoftHSM2 names the directory by a UUID whose last 16 hex digits are the serial.
        serial = created[0].replace("-", "")[-16:] if len(created) == 1 else ""
        for token in self.tokens():
            if token.label == label and (not serial or token.serial == serial):
                return SoftHsmToken(
                    token.label,
                    token.serial,
                    token.slot,
                    pin,
                    so_pin,
                    created[0] if len(created) == 1 else "",
                )
        raise DeviceIOError(f"token {label!r} was initialized but is not listed")

    def pkcs11_tool(
        self, *args: str, module: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run OpenSC's ``pkcs11-tool`` on this environment (an independent PKCS#11 client)."""
        return self._run("pkcs11-tool", "--module", module or self.module, *args)
