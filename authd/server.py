"""Server wiring: store, secrets, features, health, reflection, TLS, graceful shutdown."""

from __future__ import annotations

import asyncio
import importlib
import ipaddress
import logging
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from secrets import token_urlsafe
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from grpc_reflection.v1alpha._async import ReflectionServicer

from authd import pki
from authd.app import App
from authd.audit import AuditLog
from authd.call_link import CallLink, LinkedMethod, LinkedStream
from authd.config import Config
from authd.features import CENTER, Feature, Service, features_for
from authd.files import private_dir
from authd.front import NativeFront, make_run_dir
from authd.health import OVERALL
from authd.idempotency import IdempotencyKeys
from authd.interceptors import Authenticator, CallWrapper, WrappingServer
from authd.limits import RequestLimits
from authd.metrics import MetricsServer
from authd.secrets import open_secret_box
from authd.storage import migrate, open_database
from authd.storage.watch import StoreWatcher
from devices.errors import BadRequest

log = logging.getLogger("authd.server")

# Responses: a certificate listing, a batch of APDU responses, an audit page.
MAX_RESPONSE = 4 * 1024 * 1024
KEEPALIVE_TIMEOUT = 20.0  # seconds a keepalive ping may go unanswered before the connection ends


@dataclass
class Running:
    server: grpc.aio.Server
    port: int
    app: App
    services: list[str]
    metrics: MetricsServer | None = None
    front: NativeFront | None = None
    calls: CallLink | None = None
    store_watcher: StoreWatcher | None = None

    async def stop(self, grace: float | None = None) -> None:
        """Stop taking calls, let in-flight calls finish (up to ``grace`` s), release everything."""
        grace = self.app.config.server.grace_seconds if grace is None else grace
        await self.app.health.shutdown()
        if self.front is not None:  # first: its calls in flight still reach this server
            await asyncio.get_running_loop().run_in_executor(None, self.front.stop, grace)
        if self.calls is not None:
            self.calls.close()
        await self.server.stop(grace)
        if self.metrics is not None:
            self.metrics.close()
        self.stop_watching()
        await stop_features(self.app)
        self.app.close()

    def stop_watching(self) -> None:
        if self.store_watcher is not None:
            self.store_watcher.stop()
            self.store_watcher = None


async def stop_features(app: App) -> None:
    for feature in reversed(app.features):
        try:
            await feature.stop()
        except Exception:
            log.exception("stopping feature %s failed", feature.name)


def build_features(app: App) -> None:
    """Build this node's features in dependency order (``authd.features.FEATURES``)."""
    for name in features_for(app.config.roles):
        cls: type[Feature[Any]] = importlib.import_module(f"authd.{name}.feature").FEATURE
        settings_type = importlib.import_module(f"authd.{name}.settings").SETTINGS
        app.features.append(cls(app, app.config.settings(settings_type)))


def _host_of(listen: str) -> str:
    host = listen.rsplit(":", 1)[0]
    return host[1:-1] if host.startswith("[") else host


def is_loopback(listen: str) -> bool:
    host = _host_of(listen)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_paths(config: Config) -> tuple[Path, Path, Path]:
    """Server certificate, key and client CA; the dev PKI in the data dir when none is set."""
    s = config.server
    if s.tls_cert and s.tls_key and s.client_ca:
        return Path(s.tls_cert), Path(s.tls_key), Path(s.client_ca)
    if s.tls_cert or s.tls_key or s.client_ca:
        raise BadRequest("server.tls_cert, tls_key and client_ca must be set together")
    pki_dir = config.data_dir / "pki"
    if not (pki_dir / "server.pem").exists():
        pki.create_dev_pki(pki_dir)
        log.warning("no TLS configured: created a development CA and certificates in %s", pki_dir)
    return pki_dir / "server.pem", pki_dir / "server.key", pki_dir / "ca.pem"


@dataclass(frozen=True)
class TlsFiles:
    cert: bytes
    key: bytes
    ca: bytes


def _read_pem(path: Path, setting: str, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadRequest(f"server.{setting} {path} is missing") from None
    except OSError as exc:
        raise BadRequest(f"server.{setting} {path} cannot be read: {exc.strerror}") from None
    try:
        if what == "key":
            serialization.load_pem_private_key(data, password=None)
        else:
            x509.load_pem_x509_certificates(data)
    except (ValueError, TypeError):
        raise BadRequest(f"server.{setting} {path} is not a PEM {what} (without a "
                         "passphrase)") from None
    return data


def read_tls(config: Config) -> TlsFiles:
    """The server's certificate, key and client CA, each checked: a missing or unreadable
    file is one clear error at startup, not a failure at the first handshake."""
    cert, key, ca = tls_paths(config)
    return TlsFiles(_read_pem(cert, "tls_cert", "certificate"),
                    _read_pem(key, "tls_key", "key"),
                    _read_pem(ca, "client_ca", "certificate"))


def _listen(listen: str, add: Callable[[], int]) -> int:
    """Bind the gRPC listener; why not, in one line, when it cannot."""
    try:
        port = add()
    except RuntimeError:
        port = 0
    if port == 0:
        raise BadRequest(f"cannot listen on {listen}: {_why_not_bindable(listen)}")
    return port


def _why_not_bindable(listen: str) -> str:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host or None, int(port), type=socket.SOCK_STREAM)
    except (OSError, ValueError) as exc:
        return f"not an address of this host ({exc})"
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            try:
                probe.bind(address)
            except OSError as exc:
                return exc.strerror or str(exc)
    return "the address cannot be used"


def build_app(config: Config) -> App:
    private_dir(config.data_dir)
    db = open_database(config.store_url, config.store.pool_size)
    try:
        migrate(db)  # migrations and the data key: without the per-call timeout
        secrets = open_secret_box(config, db)
    except BaseException:
        db.close()
        raise
    db.set_timeout(config.store.timeout_seconds)
    workers = config.server.max_workers
    return App(config=config, db=db, secrets=secrets, audit=AuditLog(),
               executor=ThreadPoolExecutor(max_workers=workers, thread_name_prefix="authd-work"),
               store_executor=ThreadPoolExecutor(max_workers=workers,
                                                 thread_name_prefix="authd-store"))


async def start_server(config: Config) -> Running:
    if config.server.insecure and not is_loopback(config.server.listen):
        raise BadRequest(
            f"insecure development mode refuses to listen on non-loopback {config.server.listen}")
    app = build_app(config)
    try:
        return await _start(config, app)
    except BaseException:
        app.close()
        raise


def server_options(config: Config, limits: RequestLimits) -> list[tuple[str, int]]:
    """gRPC core's limits for every connection, before any caller is known: the largest
    request a served method takes, concurrent calls per connection, and how long a connection
    may take to start (TLS handshake and HTTP/2 settings) or stay without a call."""
    s = config.server
    idle = int(s.idle_timeout_seconds * 1000) if s.idle_timeout_seconds > 0 else 2**31 - 1
    return [
        ("grpc.max_receive_message_length", limits.largest),
        ("grpc.max_send_message_length", MAX_RESPONSE),
        ("grpc.max_concurrent_streams", s.max_streams_per_connection),
        ("grpc.server_handshake_timeout_ms", int(s.handshake_timeout_seconds * 1000)),
        ("grpc.max_connection_idle_ms", idle),
        ("grpc.keepalive_time_ms", int(s.keepalive_seconds * 1000)),
        ("grpc.keepalive_timeout_ms", int(KEEPALIVE_TIMEOUT * 1000)),
        # Flow-control windows stay at HTTP/2's 64 KiB instead of growing with the measured
        # bandwidth-delay product: a peer can then make the server buffer only a window per
        # stream, and a message above the receive limit is refused before it is read
        # (docs/daemon.md, "Limits before authorization", measured with bench/bench_limits.py).
        ("grpc.http2.bdp_probe", 0),
        ("grpc.so_reuseport", 1 if s.reuse_port else 0),
    ]


async def _start(config: Config, app: App) -> Running:
    try:
        build_features(app)
        offered = [(feature, list(feature.services())) for feature in app.features]
        services = [service for _, listed in offered for service in listed]
        app.store_services.extend(service.name for feature, listed in offered
                                  if feature.uses_store for service in listed)
        limits = RequestLimits(config, [service.name for service in services])
        server = grpc.aio.server(options=server_options(config, limits))
    except BaseException:
        await stop_features(app)
        raise
    try:
        return await _start_features(config, app, server, services, limits)
    except BaseException:
        await server.stop(0)
        await stop_features(app)
        raise


async def _start_features(config: Config, app: App, server: grpc.aio.Server,
                          services: list[Service], limits: RequestLimits) -> Running:
    native = config.server.front == "native"
    token = token_urlsafe(24) if native else ""
    if native:
        app.run_dir = make_run_dir(config.data_dir)
    wrapper = CallWrapper(Authenticator(insecure=config.server.insecure, front_token=token),
                          limits)
    if CENTER in config.roles:
        wrapper.idempotency = IdempotencyKeys(app.db, app.secrets,
                                              config.server.idempotency_seconds,
                                              config.server.crash_points)
        wrapper.run_store = app.run_store
    wrapped = WrappingServer(server, wrapper)
    health_pb2_grpc.add_HealthServicer_to_server(app.health.servicer, wrapped)
    names: list[str] = []
    for service in services:
        service.add(service.servicer, wrapped)
        app.health.add_service(service.name)
        names.append(service.name)
    app.service_names.extend(names)
    running = Running(server, 0, app, names)
    await app.health.attach()
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        ReflectionServicer(
            [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME]), wrapped)

    listen = config.server.listen
    if native:
        assert app.run_dir is not None
        daemon_socket = app.run_dir / "grpc.sock"
        daemon_socket.unlink(missing_ok=True)
        port = server.add_insecure_port(f"unix:{daemon_socket}")
        if port == 0:
            raise BadRequest(f"cannot listen on unix:{daemon_socket}")
    elif config.server.insecure:
        port = _listen(listen, lambda: server.add_insecure_port(listen))
    else:
        tls = read_tls(config)
        creds = grpc.ssl_server_credentials(
            [(tls.key, tls.cert)], root_certificates=tls.ca, require_client_auth=True)
        port = _listen(listen, lambda: server.add_secure_port(listen, creds))
    await server.start()
    running.port = port
    if config.server.metrics_listen:
        try:
            running.metrics = MetricsServer(config.server.metrics_listen)
        except OSError as exc:
            await server.stop(0)
            raise BadRequest(
                f"cannot serve metrics on {config.server.metrics_listen}: {exc}") from None
    for feature in app.features:
        await feature.start()
    if native:
        # The front end's connections get the limits this server's would have had.
        core = [f"{name}={value}" for name, value in server_options(config, limits)
                if not name.startswith(("grpc.max_receive", "grpc.max_send"))]
        linked = {name: method for service in services
                  for name, method in _linked_methods(service.servicer).items()}
        if linked:
            running.calls = CallLink(daemon_socket.parent / "calls.sock", linked, limits)
        front_args = [*app.front_args, *(running.calls.front_args() if running.calls else []),
                      f"--max-message={limits.largest}",
                      f"--max-send={MAX_RESPONSE}",
                      f"--server-options={','.join(core)}"]
        running.front = NativeFront(config, daemon_socket, front_args, token)
        if running.calls is not None:
            running.calls.front_pid = running.front.pid
        running.port = await asyncio.get_running_loop().run_in_executor(
            None, running.front.start)
    running.store_watcher = watch_store(app)
    log.info("authd serving", extra={"fields": {
        "listen": listen.rsplit(":", 1)[0] + f":{running.port}", "store": app.db.dialect,
        "front": config.server.front,
        "tls": not config.server.insecure, "kek": f"{config.kek.kind}/{config.kek.mode}",
        **({"metrics": config.server.metrics_listen.rsplit(":", 1)[0]
            + f":{running.metrics.port}"} if running.metrics is not None else {}),
        "services": names}})
    return running


def _linked_methods(servicer: object) -> dict[str, LinkedMethod | LinkedStream]:
    """The methods (unary and streaming) a servicer lets the native front end hand over the
    call link."""
    offer = getattr(servicer, "linked_methods", None)
    return offer() if callable(offer) else {}


def watch_store(app: App) -> StoreWatcher:
    """Health follows the store for the services that need it, and overall on a center node."""
    watched = [*app.store_services, *([OVERALL] if CENTER in app.config.roles else [])]
    watcher = StoreWatcher(app.db, app.health, watched, app.config.store.health_interval_seconds)
    watcher.start()
    return watcher


class BackgroundServer:
    """A server on its own event loop in a thread (tests, the demo, benchmarks)."""

    def __init__(self, config: Config) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="authd-loop",
                                        daemon=True)
        self._thread.start()
        try:
            self.running = self.call(start_server(config))
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            raise

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    @property
    def port(self) -> int:
        return self.running.port

    @property
    def app(self) -> App:
        return self.running.app

    def stop(self, grace: float | None = 1.0) -> None:
        try:
            self.call(self.running.stop(grace))
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()
