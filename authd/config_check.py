"""``authd config check FILE``: every problem of a configuration, at once, before a start.

First what the loader finds (unknown sections and keys, values not of their type, values out
of range); then what only the machine can tell: files named by the configuration that are
missing or unreadable, a PIN file others may read, a PKCS#11 module that is not there, a store
URL of an unknown kind. Nothing is created or changed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from authd import config as configmod
from authd.center.settings import CenterSettings
from authd.settings import ConfigError
from authd.token.settings import TokenSettings


def _readable(path: str, what: str, problems: list[str]) -> None:
    if not path:
        return
    p = Path(path)
    if not p.exists():
        problems.append(f"{what}: {path} does not exist")
    elif not p.is_file():
        problems.append(f"{what}: {path} is not a file")
    elif not os.access(p, os.R_OK):
        problems.append(f"{what}: {path} cannot be read by this user")


def _secret_file(path: str, what: str, problems: list[str]) -> None:
    before = len(problems)
    _readable(path, what, problems)
    if len(problems) == before and path:
        mode = Path(path).stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            problems.append(f"{what}: {path} is readable by group or others "
                            f"(mode {stat.S_IMODE(mode):03o}; make it 0600 or 0400)")


def machine_problems(cfg: configmod.Config) -> list[str]:
    """What the file cannot show: missing files, loose permissions, absent modules."""
    problems: list[str] = []
    s = cfg.server
    if not s.insecure:
        given = [v for v in (s.tls_cert, s.tls_key, s.client_ca) if v]
        if given and len(given) != 3:
            problems.append("[server] tls_cert, tls_key and client_ca must be set together")
        _readable(s.tls_cert, "[server] tls_cert", problems)
        _secret_file(s.tls_key, "[server] tls_key", problems)
        _readable(s.client_ca, "[server] client_ca", problems)
    url = cfg.store_url
    if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        problems.append(f"[store] url: unsupported scheme {url.split(':', 1)[0]!r} "
                        "(sqlite:/// or postgresql://)")
    k = cfg.kek
    if k.kind == "pkcs11":
        if not Path(k.module).exists():
            problems.append(f"[kek] module: {k.module} does not exist")
        _secret_file(k.pin_file, "[kek] pin_file", problems)
    else:
        _secret_file(k.key_file, "[kek] key_file", problems)
    if "branch" in cfg.roles:
        center = cfg.settings(CenterSettings)
        if center.urls:
            _readable(center.tls_cert, "[center] tls_cert", problems)
            _secret_file(center.tls_key, "[center] tls_key", problems)
            _readable(center.ca, "[center] ca", problems)
        token = cfg.settings(TokenSettings).effective(cfg)
        for module in token.modules or ():
            if not Path(module.path).exists():
                problems.append(f"[token] modules: {module.path} does not exist")
    return problems


def check(path: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """Every problem of the configuration in ``path`` (with environment overrides)."""
    try:
        cfg = configmod.load(path, environ=environ)
    except ConfigError as exc:
        return list(exc.problems)
    return machine_problems(cfg)
