"""A center service served at a branch node by forwarding its calls over the link.

Every method of the service is forwarded as it is, except the ones a feature does at the
branch itself (``local``: e.g. issuing a security card, whose print job comes from the center
and goes to this branch's embosser). The teller's terminal must be a branch-role caller of the
node's own institution (:meth:`CenterLink.acting_for`); the center then sees the branch node's
certificate as the caller, and the teller as the operator: the request's ``operator_id`` when it
has one, else the terminal's name at the branch. The center's answer, refusals included, reaches
the terminal unchanged. A change is sent with an idempotency key: the terminal's own
(``x-authd-idempotency-key``, when it retries one operation itself), else one made for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc_status import rpc_status

from authd.center.link import CenterLink, CenterRefusal, Rpc
from authd.context import Caller, current_caller
from authd.features import Service
from authd.idempotency import key_of
from devices.errors import NotPermitted

Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
# Calls that only read, sent to the next center node when one breaks off.
READ_PREFIXES = ("Get", "List", "Check")


def operator_of(request: Message, caller: Caller) -> str:
    """The teller a forwarded call is made for (audited at the center)."""
    if "operator_id" in request.DESCRIPTOR.fields_by_name:
        named = str(getattr(request, "operator_id", "")).strip()
        if named:
            return named
    return caller.subject


async def pass_refusal(refusal: CenterRefusal, context: grpc.aio.ServicerContext) -> None:
    """Answer the terminal with the center's status as it is (raises)."""
    await context.abort_with_status(rpc_status.to_status(refusal.status))  # type: ignore[attr-defined]


def forwarder(link: CenterLink, rpc: Rpc, *, retry: bool) -> Behavior:
    async def forward(request: Message, context: grpc.aio.ServicerContext) -> Any:
        caller = link.acting_for(current_caller())
        # The terminal's own key (its retries of one operation), else one for this call.
        key = key_of(context.invocation_metadata())
        try:
            return await link.call(rpc, request, operator=operator_of(request, caller),
                                   retry=retry, key=key)
        except CenterRefusal as refusal:
            await pass_refusal(refusal, context)

    return forward


def _refuse_stream(rpc: Rpc) -> Callable[..., AsyncIterator[Any]]:
    async def refuse(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        raise NotPermitted(f"{rpc.name} is a backend's stream: backends call the center "
                           "directly, not through a branch node")
        yield  # an async generator, as stream handlers are

    return refuse


def forwarding_service(link: CenterLink, file_descriptor: Any, service: str,
                       local: Mapping[str, Behavior] | None = None) -> Service:
    """``service`` of ``file_descriptor`` at this branch node: ``local`` methods here, the
    others forwarded to the center. Its health follows the link (condition ``center``)."""
    local = dict(local or {})
    descriptor = file_descriptor.services_by_name[service]
    unknown = set(local) - {m.name for m in descriptor.methods}
    if unknown:
        raise ValueError(f"{service} has no method {', '.join(sorted(unknown))}")
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for method in descriptor.methods:
        rpc = Rpc.of(file_descriptor, service, method.name)
        shapes: dict[str, Any] = dict(request_deserializer=rpc.request.FromString,
                                      response_serializer=rpc.reply.SerializeToString)
        if method.client_streaming and method.server_streaming:
            handlers[method.name] = grpc.stream_stream_rpc_method_handler(
                _refuse_stream(rpc), **shapes)
        elif method.server_streaming:
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                _refuse_stream(rpc), **shapes)
        elif method.client_streaming:
            raise ValueError(f"{rpc.name}: client streams are not forwarded")
        else:
            behavior = local.get(method.name) or forwarder(
                link, rpc, retry=method.name.startswith(READ_PREFIXES))
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(behavior, **shapes)
    generic = grpc.method_handlers_generic_handler(descriptor.full_name, handlers)
    link.depend(descriptor.full_name)
    return Service(descriptor.full_name, _add_generic, generic)


def _add_generic(handler: Any, server: Any) -> None:
    server.add_generic_rpc_handlers((handler,))
