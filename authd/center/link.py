"""The branch node's link to the center: mTLS channels to the center's nodes, failover, health.

A branch node calls the center with its own certificate (O = institution, OU = branch,
CN = terminal): the center sees the terminal as the caller and acts for that institution only.
The teller a call is made for travels in the ``x-authd-operator-bin`` metadata and lands in the
center's audit record beside the terminal.

Failover: the nodes of ``[center] urls`` are tried in order, those known to be down last. A call
goes to a node only once its channel is connected (``connect_timeout``), so a node that is down
costs a connection attempt and nothing else. When a call was sent and no answer came back (the
node died, the connection dropped, the deadline passed), the call may have taken effect at the
center: a call its caller marks ``retry`` (reads, and steps that are idempotent by design) is
then sent to the next node, and so is every change sent with an idempotency key
(authd/idempotency.py: the center answers its retry with the first answer, without doing it
again); a node whose connection broke under such a call (UNAVAILABLE with no answer) is asked
once more after the others, on a new connection. A change the caller marks
``repeatable=False`` carries no key and raises :class:`OutcomeUnknown`. A ``retry`` or keyed
call that a node answers UNAVAILABLE (its store does not answer: it changed nothing) goes to
the next node too.

What the center answered (any status with authd's details, or a refusal such as
UNAUTHENTICATED) is :class:`CenterRefusal`, carrying the center's ``google.rpc.Status``: a
forwarding servicer passes it on as it is; :meth:`CenterLink.call_blocking` raises the project
error it stands for, so service code reads ``except AlreadyPresent`` as it would in process.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.x509.oid import NameOID
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from authd import errors
from authd.center.settings import CenterSettings
from authd.context import Caller, Role
from authd.health import HealthBoard
from authd.idempotency import METADATA_KEY
from authd.interceptors import METADATA_OPERATOR
from devices import errors as E

log = logging.getLogger("authd.center")

CONDITION = "center"
NODE_SERVICE = "authd.center/"  # + a node's target: its own health as the link last saw it
REACHABLE = "reachable"
STATUS_DETAILS_KEY = "grpc-status-details-bin"
# Without authd's details, these codes come from the transport, not from the center's code.
_LINK_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                         grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL,
                         grpc.StatusCode.CANCELLED})
_CHANNEL_OPTIONS = [
    # a center node that comes back is found again within a couple of seconds
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.max_receive_message_length", 4 * 1024 * 1024),
]


@dataclass(frozen=True)
class Rpc:
    """One method of the center: its path and message classes."""

    path: str
    request: type[Message]
    reply: type[Message]
    streaming: bool = False

    @classmethod
    def of(cls, file_descriptor: Any, service: str, method: str) -> Rpc:
        """``Rpc.of(hid_otp_pb2.DESCRIPTOR, "HidOtpCenterService", "Reserve")``."""
        from google.protobuf import message_factory

        m = file_descriptor.services_by_name[service].methods_by_name[method]
        return cls(f"/{m.containing_service.full_name}/{m.name}",
                   message_factory.GetMessageClass(m.input_type),
                   message_factory.GetMessageClass(m.output_type),
                   m.client_streaming or m.server_streaming)

    @property
    def name(self) -> str:
        """``OtpService.Enroll``: how messages name it."""
        service, method = self.path[1:].split("/")
        return f"{service.rsplit('.', 1)[-1]}.{method}"


@dataclass(frozen=True)
class Identity:
    """Who this branch node is at the center (its certificate's subject)."""

    institution: str
    terminal: str

    @classmethod
    def from_certificate(cls, pem: bytes, where: str) -> Identity:
        try:
            cert = x509.load_pem_x509_certificate(pem)
        except ValueError:
            raise E.BadRequest(f"{where} is not a PEM certificate") from None

        def attr(oid: x509.ObjectIdentifier) -> str:
            values = cert.subject.get_attributes_for_oid(oid)
            return str(values[0].value) if values else ""

        role = attr(NameOID.ORGANIZATIONAL_UNIT_NAME)
        if role != Role.BRANCH.value:
            raise E.BadRequest(f"{where} must be a branch node's certificate (OU = branch), "
                               f"not OU = {role or '(none)'}")
        institution, terminal = attr(NameOID.ORGANIZATION_NAME), attr(NameOID.COMMON_NAME)
        if not institution or not terminal:
            raise E.BadRequest(f"{where} must name the institution (O) and the terminal (CN)")
        return cls(institution, terminal)


class CenterRefusal(Exception):
    """The center answered the call with an error status (passed on as it is)."""

    def __init__(self, status: status_pb2.Status) -> None:
        super().__init__(status.message)
        self.status = status

    def error(self) -> BaseException:
        """The project error this status stands for (same message, reason and details)."""
        s = self.status
        d = errors.details_of_status(s)
        code = _CODES.get(s.code)
        message = s.message
        if code is grpc.StatusCode.UNAUTHENTICATED:
            return E.NotPermitted(f"the center refused this branch node's certificate: "
                                  f"{message}", reason="CENTER_REFUSED_CERTIFICATE")
        if code is grpc.StatusCode.UNIMPLEMENTED:
            return E.WrongState(f"the center does not serve this call ({message})",
                                reason="CENTER_LACKS_METHOD")
        if code is grpc.StatusCode.INVALID_ARGUMENT:
            return E.BadRequest(message, field=d.field, reason=d.reason or None,
                                metadata=d.metadata)
        if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
            return E.LimitReached(message, retry_after=d.retry_after, reason=d.reason or None,
                                  metadata=d.metadata)
        cls = _ERRORS.get(code) if code is not None else None
        if cls is None:
            return CenterFault(f"the center failed: {message}", reason=d.reason or "CENTER_FAULT",
                               metadata=d.metadata)
        return cls(message, reason=d.reason or None, metadata=d.metadata)


class CenterFault(E.Unreachable):
    """The center answered with an internal error."""


class CenterUnreachable(E.Unreachable):
    """No center node could be reached: the call was not sent."""


class OutcomeUnknown(E.Unreachable):
    """The call was sent and no answer came back: it may have taken effect at the center."""


_CODES = {c.value[0]: c for c in grpc.StatusCode}
_ERRORS: dict[grpc.StatusCode, type[E.AuthdError]] = {
    grpc.StatusCode.NOT_FOUND: E.NoSuchObject,
    grpc.StatusCode.ALREADY_EXISTS: E.AlreadyPresent,
    grpc.StatusCode.PERMISSION_DENIED: E.NotPermitted,
    grpc.StatusCode.FAILED_PRECONDITION: E.WrongState,
    grpc.StatusCode.UNAVAILABLE: E.Unreachable,
    grpc.StatusCode.DEADLINE_EXCEEDED: E.TimedOut,
    grpc.StatusCode.ABORTED: E.WrongState,
    grpc.StatusCode.OUT_OF_RANGE: E.BadRequest,
}


def _status_of(err: grpc.aio.AioRpcError) -> status_pb2.Status | None:
    """The center's ``google.rpc.Status`` (authd's details) in the trailers, if it sent one."""
    trailers: Any = err.trailing_metadata() or ()
    for key, value in trailers:
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status()
            try:
                status.ParseFromString(value)
            except Exception:
                return None
            for detail in status.details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    if info.domain == errors.DOMAIN:
                        return status
            return None
    return None


def _plain_status(err: grpc.aio.AioRpcError) -> status_pb2.Status:
    code = err.code()
    return status_pb2.Status(code=code.value[0] if code else code_pb2.UNKNOWN,
                             message=err.details() or "")


@dataclass
class Endpoint:
    """One center node (or one gRPC target naming several) and what the link knows of it."""

    target: str
    open_channel: Callable[[], grpc.aio.Channel]
    channel: grpc.aio.Channel = field(init=False)
    up: bool | None = None  # None: not tried yet
    why: str = ""
    since: float = field(default_factory=time.monotonic)
    _retired: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.channel = self.open_channel()

    async def connect(self, timeout: float) -> bool:
        """Whether the node's channel is (or gets) READY within ``timeout``. A channel in
        TRANSIENT_FAILURE waits out its reconnect backoff before it tries again, so it is
        replaced by a fresh one (once per call): a node that came back meanwhile is asked at
        once."""
        deadline = time.monotonic() + timeout
        renewed = False
        while True:
            channel = self.channel
            state = channel.get_state(try_to_connect=True)
            if state is grpc.ChannelConnectivity.READY:
                return True
            if state is grpc.ChannelConnectivity.TRANSIENT_FAILURE and not renewed:
                renewed = True
                self.renew(channel)
                continue
            try:
                await asyncio.wait_for(channel.channel_ready(),
                                       max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                return False
            except grpc.aio.UsageError:
                if channel is self.channel:
                    raise
                continue  # another call renewed the channel while this one waited on it
            return True

    def renew(self, channel: grpc.aio.Channel, grace: float | None = None) -> None:
        """Replace ``channel`` (if it is still the node's) by a fresh one and close it: no
        call is in flight on a channel in TRANSIENT_FAILURE (calls fail at once there); calls
        still in flight on a channel renewed for another reason get ``grace`` seconds."""
        if channel is not self.channel:
            return
        self.channel = self.open_channel()
        closing = asyncio.ensure_future(channel.close(grace))
        self._retired.add(closing)
        closing.add_done_callback(self._retired.discard)


class CenterLink:
    """The branch node's client of the center. Built on the server's event loop."""

    def __init__(self, settings: CenterSettings, health: HealthBoard) -> None:
        self.settings = settings
        self.health = health
        cert = Path(settings.tls_cert).read_bytes()
        self.identity = Identity.from_certificate(cert, f"[center] tls_cert {settings.tls_cert}")
        creds = grpc.ssl_channel_credentials(root_certificates=Path(settings.ca).read_bytes(),
                                             private_key=Path(settings.tls_key).read_bytes(),
                                             certificate_chain=cert)
        options: list[tuple[str, Any]] = list(_CHANNEL_OPTIONS)
        if settings.server_name:
            options.append(("grpc.ssl_target_name_override", settings.server_name))
        self.endpoints = [Endpoint(url, functools.partial(grpc.aio.secure_channel, url, creds,
                                                          options=options))
                          for url in settings.urls]
        self._loop = asyncio.get_running_loop()
        self._services: set[str] = set()
        self._lock = threading.Lock()
        self._monitor: asyncio.Task[None] | None = None
        self._reported: bool | None = None

    @property
    def institution(self) -> str:
        return self.identity.institution

    @property
    def terminal(self) -> str:
        return self.identity.terminal

    # ------------------------------------------------------------------ who may use it

    def acting_for(self, caller: Caller) -> Caller:
        """Check that ``caller`` (a terminal calling this branch node) may have the node act
        at the center: a branch-role caller of this node's own institution."""
        if caller.role is not Role.BRANCH:
            raise E.NotPermitted(f"a branch node acts at the center for its tellers (role "
                                 f"branch), not for role {caller.role.value!r}: a backend calls "
                                 f"the center itself")
        if caller.institution != self.institution:
            raise E.NotPermitted(f"this branch node acts for {self.institution} only (its "
                                 f"certificate); a terminal of {caller.institution} uses its "
                                 f"own institution's branch node")
        return caller

    # ------------------------------------------------------------------ health

    def depend(self, service: str) -> None:
        """Report the link as condition ``center`` of ``service`` (its health follows it)."""
        with self._lock:
            self._services.add(service)
            ok = self._reported
        if ok is not None:
            self.health.report(service, CONDITION, ok, self._why())

    def _why(self) -> str:
        down = [f"{e.target}: {e.why}" for e in self.endpoints if e.up is False]
        return "center unreachable (" + "; ".join(down) + ")" if down else ""

    def _publish(self) -> None:
        ok = any(e.up is not False for e in self.endpoints)
        with self._lock:
            changed = ok != self._reported
            self._reported = ok
            services = sorted(self._services)
        if changed:
            why = "" if ok else self._why()
            for service in services:
                self.health.report(service, CONDITION, ok, why)

    def _mark(self, endpoint: Endpoint, up: bool, why: str = "") -> None:
        service = NODE_SERVICE + endpoint.target
        if endpoint.up is None:
            self.health.add_service(service)
        self.health.report(service, REACHABLE, up, why)
        if endpoint.up != up:
            if up:
                log.info("center node %s is reachable", endpoint.target)
            else:
                log.warning("center node %s: %s", endpoint.target, why)
            endpoint.since = time.monotonic()
        endpoint.up, endpoint.why = up, why
        self._publish()

    async def check(self) -> bool:
        """Ask every center node for its health once; True when one of them serves."""
        await asyncio.gather(*(self._check(e) for e in self.endpoints))
        return any(e.up for e in self.endpoints)

    async def _check(self, endpoint: Endpoint) -> None:
        timeout = self.settings.connect_timeout
        if not await endpoint.connect(timeout):
            self._mark(endpoint, False, f"no connection within {timeout:g} s")
            return
        stub = health_pb2_grpc.HealthStub(endpoint.channel)
        try:
            answer = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        except grpc.aio.AioRpcError as err:
            self._mark(endpoint, False, f"health check failed: {err.code().name}")
            return
        if answer.status == health_pb2.HealthCheckResponse.SERVING:
            self._mark(endpoint, True)
        else:
            self._mark(endpoint, False, "the node answers NOT_SERVING")

    async def start(self) -> None:
        await self.check()
        if self.settings.health_interval > 0:
            self._monitor = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.health_interval)
            try:
                await self.check()
            except Exception:
                log.exception("checking the center's health failed")

    async def close(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            try:
                await self._monitor
            except asyncio.CancelledError:
                pass
            self._monitor = None
        for endpoint in self.endpoints:
            await endpoint.channel.close(None)

    # ------------------------------------------------------------------ calls

    def _order(self) -> list[Endpoint]:
        """The nodes in configured order, those known to be down last."""
        return ([e for e in self.endpoints if e.up is not False]
                + [e for e in self.endpoints if e.up is False])

    async def call(self, rpc: Rpc, request: Message, *, operator: str = "",
                   retry: bool = False, timeout: float | None = None,
                   key: str | None = None, repeatable: bool = True) -> Any:
        """Call ``rpc`` at the first center node that answers; see the module docstring.

        A change (not ``retry``) is sent with the idempotency ``key`` (one made for this call
        when None), the same at every node it is sent to; ``repeatable=False``: without one,
        for a change the center cannot answer again from its key."""
        if rpc.streaming:
            raise E.WrongState(f"{rpc.name} is a stream: call the center directly")
        if retry or not repeatable:
            key = None
        elif key is None:
            key = uuid.uuid4().hex
        metadata: list[tuple[str, str | bytes]] = (
            [(METADATA_OPERATOR, operator.encode())] if operator else [])
        if key is not None:
            metadata.append((METADATA_KEY, key))
        again = retry or key is not None  # safe to send to the next node
        deadline = timeout or self.settings.call_timeout
        tried: list[str] = []
        sent = False  # a node got the call and gave no answer
        last_refusal: status_pb2.Status | None = None  # a node answered UNAVAILABLE
        order = self._order()
        broken: set[int] = set()  # nodes whose connection broke under this call, once each
        for endpoint in order:
            if not await endpoint.connect(self.settings.connect_timeout):
                why = f"no connection within {self.settings.connect_timeout:g} s"
                self._mark(endpoint, False, why)
                tried.append(f"{endpoint.target}: {why}")
                continue
            channel = endpoint.channel
            method = channel.unary_unary(
                rpc.path, request_serializer=type(request).SerializeToString,
                response_deserializer=rpc.reply.FromString)
            try:
                reply = await method(request, timeout=deadline, metadata=metadata)
            except grpc.aio.AioRpcError as err:
                status = _status_of(err)
                if (again and status is not None
                        and err.code() is grpc.StatusCode.UNAVAILABLE):
                    # The node answered that it cannot serve now (its store does not answer):
                    # a read goes to the next node.
                    why = f"UNAVAILABLE: {err.details() or 'no answer'}"
                    self._mark(endpoint, False, why)
                    tried.append(f"{endpoint.target}: {why}")
                    last_refusal = status
                    continue
                if status is not None or err.code() not in _LINK_CODES:
                    self._mark(endpoint, True)
                    raise CenterRefusal(status or _plain_status(err)) from None
                why = f"{err.code().name}: {err.details() or 'no answer'}"
                self._mark(endpoint, False, why)
                sent = True
                tried.append(f"{endpoint.target}: {why}")
                if not again:
                    break
                if (err.code() is grpc.StatusCode.UNAVAILABLE
                        and id(endpoint) not in broken):
                    # The connection broke under the call (the node may be well, the network
                    # dropped it): the node is asked once more, last, on a new connection.
                    broken.add(id(endpoint))
                    order.append(endpoint)
                    # gRPC may take a moment to see the connection is gone and would send the
                    # call down it again: a new channel is a new connection.
                    endpoint.renew(channel, grace=deadline)
                continue
            self._mark(endpoint, True)
            return reply
        if last_refusal is not None and not sent:
            raise CenterRefusal(last_refusal)
        if sent and key is not None:
            raise OutcomeUnknown(
                f"the link to the center broke during {rpc.name} at every node "
                f"({'; '.join(tried)}): it may or may not have taken effect at the center; "
                f"sending it again with idempotency key {key} ({METADATA_KEY}) is safe",
                reason="CENTER_OUTCOME_UNKNOWN", metadata={"idempotency_key": key})
        if sent:
            raise OutcomeUnknown(
                f"the link to the center broke during {rpc.name} ({'; '.join(tried)}): it may "
                f"or may not have taken effect at the center; look before trying again",
                reason="CENTER_OUTCOME_UNKNOWN")
        raise CenterUnreachable(
            f"the center is unreachable, {rpc.name} was not sent ({'; '.join(tried)}); work "
            f"on this node's own devices goes on", reason="CENTER_UNREACHABLE")

    def call_blocking(self, rpc: Rpc, request: Message, *, operator: str = "",
                      retry: bool = False, timeout: float | None = None,
                      key: str | None = None, repeatable: bool = True) -> Any:
        """:meth:`call` from a worker thread (``app.run_blocking``), never from the event
        loop; the center's refusal is raised as the project error it stands for."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            raise RuntimeError("call_blocking on the event loop: await call() instead")
        future = asyncio.run_coroutine_threadsafe(
            self.call(rpc, request, operator=operator, retry=retry, timeout=timeout, key=key,
                      repeatable=repeatable), self._loop)
        try:
            return future.result()
        except CenterRefusal as refusal:
            raise refusal.error() from None
