"""Configuration: one TOML file, overridable by environment variables.

Environment variables named ``AUTHD_<SECTION>__<KEY>`` override ``[section] key`` (values are
parsed as TOML scalars when they look like one, e.g. ``AUTHD_OTP__LOCKOUT_THRESHOLD=10``).
``AUTHD_DATA_DIR``, ``AUTHD_LOG_LEVEL``, ``AUTHD_SIMULATORS`` and ``AUTHD_ROLES`` override the
top-level keys.

The daemon's own sections (``[server]``, ``[store]``, ``[kek]``; ``[audit]`` in
``authd/audit/settings.py``) are defined here; each feature
defines its section in ``authd/<feature>/settings.py``. One loader (``authd/settings.py``)
builds them all and reports every problem of a file at once; an unknown section or key is a
problem, not silently ignored.
"""

from __future__ import annotations

import importlib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from authd.audit.settings import AuditSettings
from authd.features import FEATURES, ROLES
from authd.settings import ConfigError, load_section, setting

DEFAULT_LISTEN = "127.0.0.1:50051"
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"

S = TypeVar("S")


@dataclass(frozen=True)
class ServerConfig:
    """The ``[server]`` section: the gRPC listener, TLS, processes and metrics."""

    SECTION: ClassVar[str] = "server"
    listen: str = setting(DEFAULT_LISTEN, "address:port of the gRPC listener (port 0: any free)")
    insecure: bool = setting(False, "development mode: plaintext, caller taken from metadata, "
                                    "loopback addresses only")
    tls_cert: str = setting("", "server certificate (PEM); empty: a development PKI in data_dir")
    tls_key: str = setting("", "server private key (PEM)")
    client_ca: str = setting("", "CA certificates that client certificates must chain to (PEM)")
    grace_seconds: float = setting(10.0, "on SIGTERM, how long in-flight calls may finish")
    max_workers: int = setting(16, "threads for blocking store and device work")
    processes: int = setting(1, "server processes sharing the port (center role only)")
    reuse_port: bool = setting(False, "set SO_REUSEPORT on the listener (set by the process "
                                      "supervisor for its workers)")
    metrics_listen: str = setting("", "Prometheus metrics over HTTP (GET /metrics), e.g. "
                                      "127.0.0.1:9464; empty: off")
    front: Literal["python", "native"] = setting(
        "python", "python: this process serves the port; native: authd-front (C++ gRPC) "
                  "serves it, verifying OTP codes through this process's engine, handing token "
                  "Sign and smartcard Transmit calls to it over a private link and forwarding "
                  "every other call to it (docs/otp.md, docs/token.md)")
    front_binary: str = setting("", "the authd-front program; empty: native/build/authd-front "
                                    "of this source tree, else authd-front on the PATH")
    front_queues: int = setting(
        2, "front = 'native': gRPC completion queues of authd-front, each drained by one "
           "thread of its own (a thread signing or waiting on a call's answer holds only its "
           "queue's calls; each queue more costs wake-ups a call; 1 is cheapest for a call "
           "alone in flight: docs/smartcard.md, \"How many completion queues\")")
    max_streams_per_connection: int = setting(
        1000, "concurrent calls on one client connection (HTTP/2 MAX_CONCURRENT_STREAMS); more "
              "wait at the client, except on a connection that has not yet received the "
              "server's settings, where they are refused (UNAVAILABLE)")
    handshake_timeout_seconds: float = setting(
        10.0, "a new connection must finish its TLS handshake and send its HTTP/2 settings "
              "within this time, or it is closed")
    idle_timeout_seconds: float = setting(
        300.0, "a connection without a call for this long is closed (GOAWAY: clients "
               "reconnect when they call again); 0: never")
    idempotency_seconds: float = setting(
        86_400.0, "center role: how long the idempotency key of a change a branch node sent, "
                  "or of a backend's verification, is kept (a retry with it within this time "
                  "gets the first answer)")
    crash_points: tuple[str, ...] = setting(
        (), "testing only: points where the node kills itself (SIGKILL), as a node that dies "
            "there: METHOD/committed (a keyed change committed, its answer not stored) or "
            "METHOD/stored (its answer stored, not sent), METHOD as OtpService.Enroll; "
            "OtpService.Verify/committed: a keyed verification committed, its answer not sent")
    keepalive_seconds: float = setting(
        60.0, "ping a client connection after this long without data; one that does not "
              "answer within 20 s is closed, ending its calls")
    switch_interval_ms: float = setting(
        1.0, "how long a thread running Python keeps the interpreter's lock before a thread "
             "waiting for it gets it (sys.setswitchinterval)")

    def problems(self) -> list[str]:
        out = []
        if not 1 <= self.max_streams_per_connection <= 10_000:
            out.append("max_streams_per_connection must be 1..10000")
        if not 0.1 <= self.handshake_timeout_seconds <= 600:
            out.append("handshake_timeout_seconds must be 0.1..600")
        if self.idle_timeout_seconds < 0 or self.idle_timeout_seconds > 86_400:
            out.append("idle_timeout_seconds must be 0..86400")
        if not 1 <= self.keepalive_seconds <= 86_400:
            out.append("keepalive_seconds must be 1..86400")
        if ":" not in self.listen:
            out.append("listen must be HOST:PORT")
        if not 60 <= self.idempotency_seconds <= 30 * 86_400:
            out.append("idempotency_seconds must be 60..2592000 (30 days)")
        for point in self.crash_points:
            method, _, where = point.partition("/")
            if not method or where not in ("committed", "stored"):
                out.append(f"crash_points: {point!r} is not METHOD/committed or "
                           f"METHOD/stored")
        if not 0.05 <= self.switch_interval_ms <= 100:
            out.append("switch_interval_ms must be 0.05..100")
        if not 1 <= self.front_queues <= 64:
            out.append("front_queues must be 1..64")
        if self.grace_seconds < 0:
            out.append("grace_seconds must not be negative")
        if not 1 <= self.max_workers <= 1024:
            out.append("max_workers must be 1..1024")
        if not 1 <= self.processes <= 256:
            out.append("processes must be 1..256")
        if self.front == "native" and self.processes > 1:
            out.append("front = 'native' serves a node from one process (it uses every core); "
                       "set processes = 1")
        return out


@dataclass(frozen=True)
class StoreConfig:
    """The ``[store]`` section: SQLite (embedded default) or PostgreSQL (center clusters)."""

    SECTION: ClassVar[str] = "store"
    url: str = setting("", "sqlite:///PATH or postgresql://USER@HOST:PORT/DB; empty: "
                           "data_dir/authd.db")
    pool_size: int = setting(8, "PostgreSQL connections per server process")
    timeout_seconds: float = setting(
        5.0, "how long one store transaction may take (a free connection, locks, statements); "
             "beyond it the call answers UNAVAILABLE and the transaction is rolled back")
    health_interval_seconds: float = setting(
        2.0, "how often the store is pinged for health (services that need it report "
             "NOT_SERVING while it does not answer)")

    def problems(self) -> list[str]:
        out = [] if 1 <= self.pool_size <= 1024 else ["pool_size must be 1..1024"]
        if not 0.1 <= self.timeout_seconds <= 3600:
            out.append("timeout_seconds must be 0.1..3600")
        if not 0.1 <= self.health_interval_seconds <= 3600:
            out.append("health_interval_seconds must be 0.1..3600")
        return out


@dataclass(frozen=True)
class KekConfig:
    """The ``[kek]`` section: the key-encryption key that seals OTP seeds and card codes."""

    SECTION: ClassVar[str] = "kek"
    kind: Literal["pkcs11", "file"] = setting(
        "pkcs11", "where the key-encryption key lives: a PKCS#11 token (SoftHSM2 by default, "
                  "created on first start) or a 32-byte key file")
    module: str = setting(SOFTHSM_MODULE, "PKCS#11 module of the token")
    token_label: str = setting("authd-kek", "label of the token")
    key_label: str = setting("authd-kek", "label of the AES key on the token")
    pin_file: str = setting("", "file holding the token's user PIN (mode 0600, or 0640 owned "
                                "by another user); keep it outside data_dir")
    pin_env: str = setting("", "name of an environment variable holding the token's user PIN")
    pin_credential: str = setting(
        "", "name of a systemd credential holding the PIN (LoadCredential=NAME:PATH; read from "
            "$CREDENTIALS_DIRECTORY/NAME)")
    key_file: str = setting("", "kind = file: the key file (mode 0600); empty: "
                                "data_dir/kek.key")
    mode: Literal["data-key", "token"] = setting(
        "data-key", "data-key: unwrap a data key once and seal in process; token: every "
                    "seal/open is a call into the token")
    refresh_seconds: float = setting(
        2.0, "how often a node looks in the store for a key-encryption key added or destroyed "
             "by a rotation (before it seals); a rotation waits twice this plus [store] "
             "timeout_seconds before it moves records")
    keep_rotated_days: float = setting(
        35.0, "how long a rotated-out key stays on the token as 'retired' so that backups "
              "taken before the rotation can be restored (set it to the backups' retention); "
              "authd kek expire destroys it after that, 0 destroys it at the end of the "
              "rotation")

    def problems(self) -> list[str]:
        out = []
        if not 0 < self.refresh_seconds <= 3600:
            out.append("refresh_seconds must be more than 0 and at most 3600")
        if not 0 <= self.keep_rotated_days <= 3660:
            out.append("keep_rotated_days must be 0..3660")
        given = [name for name in ("pin_file", "pin_env", "pin_credential") if getattr(self, name)]
        if len(given) > 1:
            out.append("set one of pin_file, pin_env and pin_credential, not "
                       + " and ".join(given))
        if self.pin_env and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.pin_env):
            out.append("pin_env must be the name of an environment variable")
        if self.pin_credential and (self.pin_credential in (".", "..") or not re.fullmatch(
                r"[A-Za-z0-9_.@-]{1,255}", self.pin_credential)):
            out.append("pin_credential must be a credential name (no '/')")
        return out


CORE_SECTIONS: tuple[type, ...] = (ServerConfig, StoreConfig, KekConfig, AuditSettings)


def feature_settings_types() -> dict[str, type]:
    """Every feature's settings class by section name (``authd/<name>/settings.py``)."""
    out: dict[str, type] = {}
    for ref in FEATURES:
        module = importlib.import_module(f"authd.{ref.name}.settings")
        out[ref.name] = module.SETTINGS
    return out


@dataclass(frozen=True)
class Config:
    data_dir: Path = field(default_factory=lambda: Path("authd-data"))
    log_level: str = "INFO"
    # Software devices (the embosser simulator, the simulated HID bus, SoftHSM2 as the token
    # module) in place of hardware: on for the demo and the tests, off for ``authd serve``.
    simulators: bool = False
    # "branch" (devices attached to this host) and/or "center" (cross-institution state).
    roles: tuple[str, ...] = ("branch", "center")
    server: ServerConfig = field(default_factory=ServerConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    kek: KekConfig = field(default_factory=KekConfig)
    audit: AuditSettings = field(default_factory=AuditSettings)
    # Each feature's settings, by section name.
    sections: Mapping[str, Any] = field(default_factory=dict)

    def settings(self, cls: type[S]) -> S:
        """A feature's settings (its defaults when the file has no such section)."""
        name: str = cls.SECTION  # type: ignore[attr-defined]
        found = self.sections.get(name)
        if found is None:
            return load_section(cls, name, {})
        if not isinstance(found, cls):
            raise TypeError(f"[{name}] holds {type(found).__name__}, not {cls.__name__}")
        return found

    @property
    def store_url(self) -> str:
        return self.store.url or f"sqlite:///{self.data_dir / 'authd.db'}"


# The top-level keys: type and documentation (defaults are those of ``Config``).
TOP_LEVEL_DOCS: dict[str, tuple[str, str]] = {
    "data_dir": ("path", "where the embedded store, the development PKI and the embedded "
                         "key-encryption-key token live"),
    "log_level": ("'DEBUG' | 'INFO' | 'WARNING' | 'ERROR'", "least severe log level written"),
    "simulators": ("boolean", "simulated devices (embosser, HID bus, SoftHSM2 customer tokens) "
                              "as the default backends: for the demo and tests"),
    "roles": ("list of 'branch' | 'center'",
              "branch: devices attached to this host; center: the cross-institution state"),
}
_TOP_LEVEL = set(TOP_LEVEL_DOCS)
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


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


def _top_level(raw: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if "data_dir" in raw:
        if isinstance(raw["data_dir"], str) and raw["data_dir"] and "\x00" not in raw["data_dir"]:
            kwargs["data_dir"] = Path(raw["data_dir"]).expanduser()
        else:
            problems.append("data_dir must be a path")
    if "log_level" in raw:
        level = str(raw["log_level"]).upper()
        if level in _LOG_LEVELS:
            kwargs["log_level"] = level
        else:
            problems.append(f"log_level must be one of {', '.join(_LOG_LEVELS)}")
    if "simulators" in raw:
        if isinstance(raw["simulators"], bool):
            kwargs["simulators"] = raw["simulators"]
        else:
            problems.append("simulators must be true or false")
    if "roles" in raw:
        value = raw["roles"]
        roles = [value] if isinstance(value, str) else value
        if (not isinstance(roles, list | tuple) or not roles
                or any(r not in ROLES for r in roles)):
            problems.append("roles must be a non-empty list of 'branch' and 'center'")
        else:
            kwargs["roles"] = tuple(dict.fromkeys(roles))
    return kwargs


def from_mapping(raw: Mapping[str, Any]) -> Config:
    """Build the configuration; raises :class:`ConfigError` listing every problem."""
    problems: list[str] = []
    kwargs = _top_level(raw, problems)
    core = {cls.SECTION: cls for cls in CORE_SECTIONS}  # type: ignore[attr-defined]
    features = feature_settings_types()
    sections: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _TOP_LEVEL:
            continue
        cls = core.get(key) or features.get(key)
        if cls is None:
            problems.append(f"[{key}]: unknown section" if isinstance(value, Mapping)
                            else f"{key}: unknown setting")
            continue
        try:
            built: Any = load_section(cls, key, value)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        if key in core:
            kwargs[key] = built
        else:
            sections[key] = built
    for name, cls in features.items():
        if name not in sections and name not in raw:
            try:
                sections[name] = load_section(cls, name, {})
            except ConfigError as exc:
                problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return Config(**kwargs, sections=sections)


def read_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError([f"config file not found: {path}"]) from None
    except IsADirectoryError:
        raise ConfigError([f"config file {path} is a directory"]) from None
    except PermissionError:
        raise ConfigError([f"config file {path} cannot be read (permission denied)"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"config file {path} is not valid TOML: {exc}"]) from None


def load(path: str | os.PathLike[str] | None = None,
         environ: Mapping[str, str] | None = None,
         overrides: Mapping[str, Any] | None = None) -> Config:
    """Read the TOML file (if any), then environment overrides, then explicit overrides."""
    raw: dict[str, Any] = read_file(path) if path is not None else {}
    raw = _merge(raw, _env_overrides(os.environ if environ is None else environ))
    if overrides:
        raw = _merge(raw, overrides)
    return from_mapping(raw)
