"""Configuration: one TOML file, overridable by environment variables.

Environment variables named ``AUTHD_<SECTION>__<KEY>`` override ``[section] key`` (values are
parsed as TOML scalars when they look like one, e.g. ``AUTHD_OTP__LOCKOUT_THRESHOLD=10``).
``AUTHD_DATA_DIR`` overrides the top-level ``data_dir``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devices.errors import InvalidArgument

DEFAULT_LISTEN = "127.0.0.1:50051"
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


@dataclass(frozen=True)
class ServerConfig:
    listen: str = DEFAULT_LISTEN
    # Explicit development mode: plaintext, caller taken from metadata, loopback only.
    insecure: bool = False
    tls_cert: str = ""
    tls_key: str = ""
    client_ca: str = ""
    grace_seconds: float = 10.0
    max_workers: int = 16
    # Server processes sharing the port (center role only; see authd/workers.py).
    processes: int = 1
    reuse_port: bool = False
    # Prometheus metrics over HTTP (GET /metrics), e.g. "127.0.0.1:9464"; empty: off.
    metrics_listen: str = ""


@dataclass(frozen=True)
class StoreConfig:
    # sqlite:///path/to/authd.db or postgresql://user@host:port/db
    url: str = ""
    pool_size: int = 8


@dataclass(frozen=True)
class KekConfig:
    # "pkcs11": a key-encryption key in a PKCS#11 token (SoftHSM2 by default, created on first
    # start); "file": a 32-byte key file (created on first start when missing).
    kind: str = "pkcs11"
    module: str = SOFTHSM_MODULE
    token_label: str = "authd-kek"
    key_label: str = "authd-kek"
    pin_file: str = ""
    key_file: str = ""
    # "data-key": unwrap a data key once and seal in process; "token": every seal/open on the token.
    mode: str = "data-key"


@dataclass(frozen=True)
class OtpConfig:
    lockout_threshold: int = 10
    drift_steps: int = 1
    hotp_look_ahead: int = 10
    default_digits: int = 6
    default_period: int = 60
    default_algorithm: str = "SHA1"
    batch_max: int = 256
    # Group-commit writer threads; 0 = 1 on SQLite (one writer at a time anyway), 4 on PostgreSQL.
    writers: int = 0
    # "thread": writer threads evaluate and commit batches (most verifications per second);
    # "loop": the event loop evaluates, a helper thread commits (SQLite in one process; lower
    # latency at the same load).
    engine: str = "thread"
    # Per-institution rate limits of each server process (authd/ratelimit.py): calls per
    # second on average and the burst allowed; a rate of 0 switches a limit off.
    verify_per_second: float = 200.0  # Verify and every request of a VerifyStream
    verify_burst: int = 400
    online_register_per_second: float = 2.0  # Register by a backend (proof of possession)
    online_register_burst: int = 30
    branch_register_per_second: float = 5.0  # Register by a branch (no code)
    branch_register_burst: int = 50


@dataclass(frozen=True)
class Config:
    data_dir: Path = field(default_factory=lambda: Path("authd-data"))
    log_level: str = "INFO"
    simulators: bool = True
    # "branch" (devices attached to this host) and/or "center" (cross-institution state).
    roles: tuple[str, ...] = ("branch", "center")
    server: ServerConfig = field(default_factory=ServerConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    kek: KekConfig = field(default_factory=KekConfig)
    otp: OtpConfig = field(default_factory=OtpConfig)
    extra: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def section(self, name: str) -> Mapping[str, Any]:
        """A feature's own ``[name]`` table (empty when absent)."""
        return self.extra.get(name, {})

    @property
    def store_url(self) -> str:
        return self.store.url or f"sqlite:///{self.data_dir / 'authd.db'}"


_TYPED_SECTIONS: dict[str, type] = {
    "server": ServerConfig,
    "store": StoreConfig,
    "kek": KekConfig,
    "otp": OtpConfig,
}
_TOP_LEVEL = {"data_dir", "log_level", "simulators", "roles"}


def _parse_env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith("AUTHD_"):
            continue
        rest = name[len("AUTHD_"):].lower()
        if "__" in rest:
            section, key = rest.split("__", 1)
            out.setdefault(section, {})[key] = _parse_env_value(raw)
        elif rest in _TOP_LEVEL:
            out[rest] = raw if rest in ("data_dir", "log_level") else _parse_env_value(raw)
    return out


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _build_section(cls: type, name: str, values: Mapping[str, Any]) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise InvalidArgument(f"unknown setting(s) in [{name}]: {', '.join(unknown)}")
    try:
        return cls(**values)
    except TypeError as exc:
        raise InvalidArgument(f"bad [{name}] section: {exc}") from None


def from_mapping(raw: Mapping[str, Any]) -> Config:
    kwargs: dict[str, Any] = {}
    extra: dict[str, Mapping[str, Any]] = {}
    for key, value in raw.items():
        if key in _TYPED_SECTIONS:
            if not isinstance(value, Mapping):
                raise InvalidArgument(f"[{key}] must be a table")
            kwargs[key] = _build_section(_TYPED_SECTIONS[key], key, value)
        elif key == "data_dir":
            kwargs["data_dir"] = Path(str(value)).expanduser()
        elif key == "roles":
            roles = [value] if isinstance(value, str) else list(value)
            bad = sorted(set(roles) - {"branch", "center"})
            if bad or not roles:
                raise InvalidArgument("roles must be a non-empty list of 'branch' and 'center'")
            kwargs["roles"] = tuple(roles)
        elif key in _TOP_LEVEL:
            kwargs[key] = value
        elif isinstance(value, Mapping):
            extra[key] = dict(value)
        else:
            raise InvalidArgument(f"unknown top-level setting: {key}")
    return Config(**kwargs, extra=extra)


def load(path: str | os.PathLike[str] | None = None,
         environ: Mapping[str, str] | None = None,
         overrides: Mapping[str, Any] | None = None) -> Config:
    """Read the TOML file (if any), then environment overrides, then explicit overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise InvalidArgument(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise InvalidArgument(f"config file {path} is not valid TOML: {exc}") from None
    raw = _merge(raw, _env_overrides(os.environ if environ is None else environ))
    if overrides:
        raw = _merge(raw, overrides)
    return from_mapping(raw)
