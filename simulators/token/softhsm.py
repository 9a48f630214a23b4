"""Customers' HSM security tokens as SoftHSM2 tokens: made, plugged and unplugged at run time.

Plug and unplug move a token's directory out of the token directory and back; SoftHSM2 notices
only at ``C_Initialize``, which is why drivers.pkcs11 re-initializes a private instance of the
module to rescan (see its module docstring). :func:`process_env` gives this process's
environment (the daemon's key-encryption-key token and simulated customer tokens live side by
side in it, under distinct labels).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import threading
from pathlib import Path

from drivers.errors import DeviceIOError
from drivers.pkcs11 import softhsm
from drivers.pkcs11.softhsm import DEFAULT_PIN, DEFAULT_SO_PIN, MODULE, SoftHsmToken

__all__ = ["DEFAULT_PIN", "DEFAULT_SO_PIN", "MODULE", "SoftHsmEnvironment", "SoftHsmToken",
           "process_env"]


class SoftHsmEnvironment(softhsm.SoftHsmEnvironment):
    """A SoftHSM2 environment whose tokens can be made in bulk, unplugged and plugged again."""

    def create_tokens(
        self,
        count: int,
        prefix: str = "customer",
        pin: str = DEFAULT_PIN,
        so_pin: str = DEFAULT_SO_PIN,
    ) -> list[SoftHsmToken]:
        return [self.init_token(f"{prefix}-{i + 1}", pin, so_pin) for i in range(count)]

    def _directory(self, token: SoftHsmToken) -> str:
        if not token.directory:
            raise DeviceIOError(f"token {token.label!r} was not made by this simulator")
        return token.directory

    def is_plugged(self, token: SoftHsmToken) -> bool:
        return (self.token_dir / self._directory(token)).is_dir()

    def unplug(self, token: SoftHsmToken) -> None:
        """Pull the token out of its slot."""
        self.ensure()
        src = self.token_dir / self._directory(token)
        if src.is_dir():
            shutil.move(str(src), str(self.unplugged_dir / token.directory))

    def plug(self, token: SoftHsmToken) -> None:
        """Insert the token again."""
        self.ensure()
        src = self.unplugged_dir / self._directory(token)
        if src.is_dir():
            shutil.move(str(src), str(self.token_dir / token.directory))

    def reinitialize(self, token: SoftHsmToken, label: str | None = None,
                     pin: str = DEFAULT_PIN) -> SoftHsmToken:
        """Initialize the token again under its serial, as an issuer's tool does (SoftHSM2
        asks for the current SO PIN and keeps it): every object is gone, the label may be
        new, and the user PIN is ``pin``."""
        label = label or token.label
        self._util("--init-token", "--serial", token.serial, "--label", label, "--pin", pin,
                   "--so-pin", token.so_pin)
        return dataclasses.replace(token, label=label, pin=pin)

    def destroy(self, token: SoftHsmToken) -> None:
        """Throw the token away."""
        for base in (self.token_dir, self.unplugged_dir):
            shutil.rmtree(base / self._directory(token), ignore_errors=True)


_process_env: SoftHsmEnvironment | None = None
_process_lock = threading.Lock()


def process_env() -> SoftHsmEnvironment:
    """This process's environment: the one ``SOFTHSM2_CONF`` names (if ours), else a new one
    in a temporary directory, activated."""
    global _process_env
    with _process_lock:
        if _process_env is None:
            env = SoftHsmEnvironment.from_environment()
            if env is None:
                env = SoftHsmEnvironment(Path(tempfile.mkdtemp(prefix="authd-softhsm-")))
                env.activate()
            _process_env = env.ensure()
        return _process_env
