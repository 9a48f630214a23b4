"""SoftHSM2 tokens with a configuration and token directory of their own (never the system's).

SoftHSM2 reads ``SOFTHSM2_CONF`` once, when the library is initialized in a process, so one
process sees one token directory: the daemon's key-encryption-key token and simulated customer
tokens live side by side in it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from drivers.errors import DeviceIOError

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
UTIL = "softhsm2-util"


@dataclass(frozen=True)
class SoftHsmToken:
    label: str
    serial: str
    slot: int


class SoftHsmEnvironment:
    """A SoftHSM2 configuration rooted at ``root`` (conf file + token directory)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.conf = self.root / "softhsm2.conf"
        self.token_dir = self.root / "tokens"

    @classmethod
    def from_environment(cls) -> SoftHsmEnvironment | None:
        """The environment named by ``SOFTHSM2_CONF``, if it is one of ours."""
        conf = os.environ.get("SOFTHSM2_CONF")
        if not conf:
            return None
        return cls(Path(conf).parent)

    def ensure(self) -> SoftHsmEnvironment:
        self.token_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        if not self.conf.exists():
            self.conf.write_text(
                f"directories.tokendir = {self.token_dir}\n"
                "objectstore.backend = file\n"
                "log.level = ERROR\n"
                "slots.removable = true\n"
            )
        return self

    def activate(self) -> None:
        """Point this process's SoftHSM2 at this environment (before the library is loaded)."""
        self.ensure()
        os.environ["SOFTHSM2_CONF"] = str(self.conf)

    def _util(self, *args: str) -> str:
        if shutil.which(UTIL) is None:
            raise DeviceIOError("softhsm2-util is not installed (Debian package softhsm2)")
        env = dict(os.environ, SOFTHSM2_CONF=str(self.conf))
        proc = subprocess.run([UTIL, *args], env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            # softhsm2-util never echoes PINs; its message names the failing step.
            raise DeviceIOError(f"softhsm2-util {args[0]} failed: {proc.stderr.strip()[:200]}")
        return proc.stdout

    def tokens(self) -> list[SoftHsmToken]:
        """Initialized tokens, from ``softhsm2-util --show-slots``."""
        self.ensure()
        out = self._util("--show-slots")
        found = []
        for block in re.split(r"\n(?=Slot )", out):
            slot = re.match(r"Slot (\d+)", block)
            label = re.search(r"^\s*Label:\s*(.*?)\s*$", block, re.M)
            serial = re.search(r"^\s*Serial number:\s*(\S*)", block, re.M)
            initialized = re.search(r"^\s*Initialized:\s*yes", block, re.M)
            if slot and label and initialized and label.group(1):
                found.append(SoftHsmToken(label.group(1), serial.group(1) if serial else "",
                                          int(slot.group(1))))
        return found

    def has_token(self, label: str) -> bool:
        return any(t.label == label for t in self.tokens())

    def init_token(self, label: str, pin: str, so_pin: str) -> SoftHsmToken:
        """Initialize a new token in the first free slot."""
        self.ensure()
        self._util("--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", so_pin)
        for token in self.tokens():
            if token.label == label:
                return token
        raise DeviceIOError(f"token {label!r} was initialized but is not listed")
