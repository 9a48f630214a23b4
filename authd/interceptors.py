"""The one chokepoint every call passes: who is calling, what went wrong, how long it took.

Each method handler of the daemon's services is wrapped once, when its service is registered
(``WrappingServer``), rather than by a gRPC interceptor that builds a new handler per call.

- Authentication: with mTLS the caller comes from the client certificate (O = institution,
  OU = role, CN = subject); in the explicit insecure development mode from metadata.
- Errors: project and driver errors become a gRPC status with their (secret-free) message and
  structured details, by the one table of ``authd/errors.py``; anything unexpected becomes
  INTERNAL with a reference id that appears in the server log.
- Requests: each is parsed here, not by gRPC, after its size was checked against its
  method's limit (``authd/limits.py``): too large is RESOURCE_EXHAUSTED, undecodable is
  INVALID_ARGUMENT, each without a traceback in the log. Health and reflection are open to
  every caller but their requests are checked the same way.
- Idempotency: on a node with the center role, a branch node's call that names an
  idempotency key runs under it (``authd/idempotency.py``): a retry gets the first answer.
- Access log: method, caller, status, duration. Never request or response bodies.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc
from cryptography import x509
from cryptography.x509.oid import NameOID
from grpc_status import rpc_status

from authd import errors, idempotency, metrics, validate
from authd.context import Caller, Role, _current, set_caller
from authd.idempotency import IdempotencyKeys
from authd.limits import DEFAULT, RequestLimits
from devices.errors import AuthdError, BadRequest, LimitReached

log = logging.getLogger("authd.access")

METADATA_INSTITUTION = "x-authd-institution"
METADATA_ROLE = "x-authd-role"
METADATA_SUBJECT = "x-authd-subject"
# A branch node calling the center names the teller it acts for (audited beside the terminal);
# binary metadata, so a name in any script travels as UTF-8.
METADATA_OPERATOR = "x-authd-operator-bin"
# What the native front end sends with a forwarded call (authd/front.py).
FRONT_TOKEN = "x-authd-front-token"
FORWARDED = ("x-authd-institution-bin", "x-authd-role-bin", "x-authd-subject-bin")

_INSTITUTION = re.compile(r"[A-Za-z0-9_.-]{1,32}")
MAX_SUBJECT = 64  # RFC 5280 ub-common-name
_OPEN_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


class Unauthenticated(Exception):
    """The call carries no valid caller identity (answered UNAUTHENTICATED)."""


def _caller_from_certificate(pem: bytes) -> Caller:
    cert = x509.load_pem_x509_certificate(pem)

    def attr(oid: x509.ObjectIdentifier) -> str:
        values = cert.subject.get_attributes_for_oid(oid)
        return str(values[0].value) if values else ""

    institution = attr(NameOID.ORGANIZATION_NAME)
    role = attr(NameOID.ORGANIZATIONAL_UNIT_NAME)
    subject = attr(NameOID.COMMON_NAME)
    return make_caller(institution, role, subject)


def make_caller(institution: str, role: str, subject: str) -> Caller:
    """The caller named by a certificate's O, OU and CN (or the development metadata); every
    part is checked like request fields, since each reaches the audit trail of every store."""
    if _INSTITUTION.fullmatch(institution) is None:
        raise Unauthenticated("caller has no valid institution code (O: 1..32 letters, digits,"
                              " '_', '.' or '-')")
    try:
        parsed = Role(role)
    except ValueError:
        raise Unauthenticated("caller has an unknown role (OU: one of "
                              + ", ".join(r.value for r in Role) + ")") from None
    try:
        validate.text(subject, "caller subject (CN)", max_length=MAX_SUBJECT)
    except BadRequest as exc:
        raise Unauthenticated(str(exc)) from None
    return Caller(institution=institution, role=parsed, subject=subject or "-")


class Authenticator:
    """Finds the caller of a call: the client certificate in mTLS mode, the metadata in the
    insecure development mode, and behind the native front end (``front_token`` set) the
    caller the front end found, which it sends as ``x-authd-*-bin`` metadata with its token
    (authd/front.py)."""

    def __init__(self, insecure: bool, front_token: str = "") -> None:
        self.insecure = insecure
        self.front_token = front_token
        self._cache: dict[bytes, Caller] = {}
        self._forwarded: dict[tuple[bytes, bytes, bytes], Caller] = {}

    def _from_front(self, context: grpc.aio.ServicerContext) -> Caller:
        md = dict(context.invocation_metadata() or ())
        token = md.get(FRONT_TOKEN)
        if not isinstance(token, str) or not hmac.compare_digest(token, self.front_token):
            raise Unauthenticated("calls reach this server only through its front end")
        parts = tuple(md.get(key, b"") for key in FORWARDED)
        key = tuple(p if isinstance(p, bytes) else p.encode() for p in parts)
        caller = self._forwarded.get(key)  # type: ignore[arg-type]
        if caller is None:
            try:
                names = [p.decode() for p in key]
            except UnicodeDecodeError:
                raise Unauthenticated("the caller's certificate names are not UTF-8") from None
            caller = make_caller(*names)
            if len(self._forwarded) > 4096:
                self._forwarded.clear()
            self._forwarded[key] = caller  # type: ignore[index]
        return caller

    def caller(self, context: grpc.aio.ServicerContext) -> Caller:
        if self.front_token:
            return self._from_front(context)
        if self.insecure:
            md = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
            return make_caller(md.get(METADATA_INSTITUTION, ""), md.get(METADATA_ROLE, ""),
                                md.get(METADATA_SUBJECT, "dev"))
        certs = context.auth_context().get("x509_pem_cert")
        if not certs:
            raise Unauthenticated("a client certificate is required")
        pem = next(iter(certs))
        caller = self._cache.get(pem)
        if caller is None:
            caller = _caller_from_certificate(pem)
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[pem] = caller
        return caller


def _with_operator(caller: Caller, context: grpc.aio.ServicerContext) -> Caller:
    """The caller with the teller a branch node names in the metadata (branch role only:
    other callers act for themselves, and what they send there is ignored)."""
    if caller.role is not Role.BRANCH:
        return caller
    for key, value in context.invocation_metadata() or ():
        if key == METADATA_OPERATOR:
            return operator_from(caller, value)
    return caller


def operator_from(caller: Caller, value: bytes | str | None) -> Caller:
    """The caller with the operator named by ``value`` (the ``x-authd-operator-bin``
    metadata; None: not sent), for a branch-role caller."""
    if caller.role is not Role.BRANCH or value is None:
        return caller
    try:
        text = value.decode() if isinstance(value, bytes) else str(value)
        operator = validate.text(text, "operator (x-authd-operator-bin)")
    except (UnicodeDecodeError, BadRequest) as exc:
        raise Unauthenticated(f"the operator a branch node names must be UTF-8 text "
                              f"without control characters: {exc}") from None
    return dataclasses.replace(caller, operator=operator.strip())


class _Requests:
    """The size check and parser of one method's requests."""

    def __init__(self, method: str, parse: Any, limit: int) -> None:
        self.method = method
        self._parse = parse
        self.limit = limit

    def check_size(self, raw: bytes) -> None:
        if len(raw) > self.limit:
            raise LimitReached(f"the request is {len(raw):,} bytes; {self.method} takes at "
                               f"most {self.limit:,}", reason="REQUEST_TOO_LARGE",
                               metadata={"limit": self.limit})

    def parse(self, raw: bytes) -> Any:
        if self._parse is None:
            return raw
        try:
            return self._parse(raw)
        except Exception:
            raise BadRequest(f"the request could not be decoded as a {self.method} request",
                             reason="UNDECODABLE_REQUEST") from None

    async def stream(self, raw_requests: AsyncIterator[bytes],
                     failed: list[AuthdError]) -> AsyncIterator[Any]:
        """The parsed requests of a stream; at the first bad one the stream ends and the
        error is left in ``failed`` (the call is then answered with it, whatever the
        servicer does with the end of its requests)."""
        async for raw in raw_requests:
            try:
                self.check_size(raw)
                request = self.parse(raw)
            except AuthdError as exc:
                failed.append(exc)
                return
            yield request


class CallWrapper:
    """Wraps every method handler of the daemon's own services, once, when it is registered."""

    def __init__(self, authenticator: Authenticator, limits: RequestLimits | None = None) -> None:
        self._auth = authenticator
        self._limits = limits
        # On a node with the center role: branch nodes' keyed changes (authd/idempotency.py).
        self.idempotency: IdempotencyKeys | None = None
        self.run_store: Callable[..., Awaitable[Any]] | None = None

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        if handler is None:
            return handler
        requests = _Requests(method, handler.request_deserializer,
                             self._limits.of(method) if self._limits else DEFAULT)
        # Health and reflection answer every caller (load balancers, grpcurl).
        authenticate = not method.startswith(_OPEN_PREFIXES)
        if handler.unary_unary:
            serialize = handler.response_serializer
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary, requests, authenticate, serialize),
                response_serializer=_passing_bytes(serialize))
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, handler.unary_stream, requests, authenticate),
                response_serializer=handler.response_serializer)
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(
                self._stream_stream(method, handler.stream_stream, requests, authenticate),
                response_serializer=handler.response_serializer)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._stream_unary(method, handler.stream_unary, requests, authenticate),
                response_serializer=handler.response_serializer)
        return handler

    async def _authenticate(self, context: grpc.aio.ServicerContext,
                            authenticate: bool) -> Caller | None:
        if not authenticate:
            return None
        try:
            caller = _with_operator(self._auth.caller(context), context)
        except Unauthenticated as exc:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
            raise AssertionError("abort returned") from None
        set_caller(caller)
        return caller

    async def _one(self, method: str, requests: _Requests, raw: bytes,
                   context: grpc.aio.ServicerContext, authenticate: bool
                   ) -> tuple[Caller | None, Any]:
        """The caller and the parsed request of a call with one request."""
        try:
            requests.check_size(raw)
        except AuthdError as exc:
            await _abort_for(exc, context, method)
            raise
        caller = await self._authenticate(context, authenticate)
        try:
            return caller, requests.parse(raw)
        except AuthdError as exc:
            await _abort_for(exc, context, method)
            raise

    def _unary(self, method: str, behavior: Any, requests: _Requests,
               authenticate: bool, serialize: Callable[[Any], bytes] | None = None) -> Any:
        name = method.lstrip("/").rsplit(".", 1)[-1].replace("/", ".")  # OtpService.Enroll

        async def call(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            caller, request = await self._one(method, requests, raw, context, authenticate)
            try:
                keys, run_store = self.idempotency, self.run_store
                key = (idempotency.key_of(context.invocation_metadata())
                       if keys is not None and caller is not None
                       and caller.role is Role.BRANCH else None)
                if key is not None and keys is not None and run_store is not None \
                        and caller is not None:
                    response = await keys.call(
                        institution=caller.institution, method=name, key=key, raw=raw,
                        run=lambda: behavior(request, context),
                        serialize=serialize or _serialize, run_store=run_store)
                else:
                    response = await behavior(request, context)
            except idempotency.StoredRefusal as refusal:
                _log_access(method, caller, _code_of(refusal.status.code), None)
                await context.abort_with_status(  # type: ignore[attr-defined]
                    rpc_status.to_status(refusal.status))
                raise
            except Exception as exc:
                await _abort_for(exc, context, method)
                raise
            _log_access(method, caller, grpc.StatusCode.OK, started)
            return response

        return call

    def _stream(self, method: str, behavior: Any, requests: _Requests,
                authenticate: bool) -> Any:
        async def call(raw: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            started = time.perf_counter()
            caller, request = await self._one(method, requests, raw, context, authenticate)
            try:
                async for item in behavior(request, context):
                    yield item
            except Exception as exc:
                await _abort_for(exc, context, method)
                raise
            _log_access(method, caller, grpc.StatusCode.OK, started)

        return call

    def _stream_stream(self, method: str, behavior: Any, requests: _Requests,
                       authenticate: bool) -> Any:
        async def call(raw_requests: AsyncIterator[bytes],
                       context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            started = time.perf_counter()
            caller = await self._authenticate(context, authenticate)
            failed: list[AuthdError] = []
            responses = behavior(requests.stream(raw_requests, failed), context)
            try:
                async for item in responses:
                    if failed:
                        break
                    yield item
                if failed:
                    raise failed[0]
            except Exception as exc:
                await _abort_for(exc, context, method)
                raise
            finally:
                close = getattr(responses, "aclose", None)
                if close is not None:
                    await close()
            _log_access(method, caller, grpc.StatusCode.OK, started)

        return call

    def _stream_unary(self, method: str, behavior: Any, requests: _Requests,
                      authenticate: bool) -> Any:
        async def call(raw_requests: AsyncIterator[bytes],
                       context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            caller = await self._authenticate(context, authenticate)
            failed: list[AuthdError] = []
            try:
                response = await behavior(requests.stream(raw_requests, failed), context)
                if failed:
                    raise failed[0]
            except Exception as exc:
                await _abort_for(exc, context, method)
                raise
            _log_access(method, caller, grpc.StatusCode.OK, started)
            return response

        return call


def _passing_bytes(serialize: Callable[[Any], bytes] | None) -> Callable[[Any], bytes] | None:
    """The response serializer, passing an answer already serialized (a stored one) as is."""
    if serialize is None:
        return None

    def serialized(response: Any) -> bytes:
        return response if isinstance(response, bytes) else serialize(response)

    return serialized


def _serialize(response: Any) -> bytes:
    return bytes(response.SerializeToString())


_CODES = {c.value[0]: c for c in grpc.StatusCode}


def _code_of(code: int) -> grpc.StatusCode:
    return _CODES.get(code, grpc.StatusCode.UNKNOWN)


async def _abort_for(exc: Exception, context: grpc.aio.ServicerContext, method: str) -> None:
    """Abort the call with the status for ``exc`` (raises); returns only for an AbortError."""
    if isinstance(exc, grpc.aio.AbortError):
        return
    status = errors.grpc_status(exc, method)
    _log_access(method, _current.get(), status.code, None)
    await context.abort_with_status(status)  # type: ignore[attr-defined]


def access_logged(method: str, caller: Caller | None, code: int,
                  started: float | None) -> None:
    """Counts and logs a call that did not come through this server (the front end's call
    link), as a call of this server is; ``code``: a ``google.rpc.Code`` value."""
    _log_access(method, caller, _CODES[code], started)


def access_logged_timed(method: str, caller: Caller | None, code: int, seconds: float) -> None:
    """``access_logged`` for a call timed elsewhere (a card lent to the front end): it took
    ``seconds``, observed in the latency histogram as this server's calls are."""
    _log_took(method, caller, _CODES[code], seconds)


def access_logged_item(method: str, caller: Caller | None, seconds: float) -> None:
    """The access log's line for one request of a stream answered elsewhere (a lent token
    login's SignStream): logged as a call is, not counted as one (the stream is the call)."""
    _log_line(method, caller, grpc.StatusCode.OK, seconds)


def request_parser(method: str, parse: Any, limit: int) -> _Requests:
    """The size check and parser of ``method``'s requests, as this server applies them."""
    return _Requests(method, parse, limit)


# The labelled children each call is counted and timed with (code, method; method).
_COUNTED = metrics.Children(metrics.RPCS)
_TIMED = metrics.Children(metrics.RPC_SECONDS)


def _log_access(method: str, caller: Caller | None, code: grpc.StatusCode,
                started: float | None) -> None:
    _log_took(method, caller, code, None if started is None else time.perf_counter() - started)


def _log_took(method: str, caller: Caller | None, code: grpc.StatusCode,
              took: float | None) -> None:
    _COUNTED(code.name, method).inc()
    if took is not None:
        _TIMED(method).observe(took)
    _log_line(method, caller, code, took)


def _log_line(method: str, caller: Caller | None, code: grpc.StatusCode,
              took: float | None) -> None:
    level = logging.DEBUG if code == grpc.StatusCode.OK else logging.INFO
    if not log.isEnabledFor(level):
        return
    fields: dict[str, Any] = {"method": method, "status": code.name}
    if caller is not None:
        fields.update(institution=caller.institution, role=caller.role.value,
                      subject=caller.subject)
        if caller.operator:
            fields["operator"] = caller.operator
    if took is not None:
        fields["ms"] = round(took * 1000, 3)
    log.log(level, "call", extra={"fields": fields})


_CODES = {code.value[0]: code for code in grpc.StatusCode}


class _WrappedGeneric(grpc.GenericRpcHandler):
    def __init__(self, inner: grpc.GenericRpcHandler, wrapper: CallWrapper) -> None:
        self._inner = inner
        self._wrapper = wrapper
        self._cache: dict[str, grpc.RpcMethodHandler] = {}

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method: str = details.method  # type: ignore[attr-defined]
        cached = self._cache.get(method)
        if cached is None:
            handler = self._inner.service(details)
            if handler is None:
                return None
            cached = self._cache[method] = self._wrapper.wrap(method, handler)
        return cached


class WrappingServer:
    """What features register their services with: the real server, whose handlers it wraps."""

    def __init__(self, server: grpc.aio.Server, wrapper: CallWrapper) -> None:
        self._server = server
        self._wrapper = wrapper

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(
            tuple(_WrappedGeneric(h, self._wrapper) for h in handlers))

    def add_registered_method_handlers(self, service: str,
                                       handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self._server.add_registered_method_handlers(  # type: ignore[attr-defined]
            service, {name: self._wrapper.wrap(f"/{service}/{name}", h)
                      for name, h in handlers.items()})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)
