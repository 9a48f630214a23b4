"""The one table from what went wrong to the gRPC status a caller sees.

Project errors (``devices.errors``) and driver errors (``drivers.errors``) become a status code,
their (secret-free) message, and structured details in the standard ``google.rpc.Status`` form
(grpcio-status): ``ErrorInfo`` with the error's stable ``reason`` and ``metadata``,
``BadRequest`` naming the field at fault, ``RetryInfo`` when a limit says when to come back.
Clients read them with :func:`details_of`. Anything unexpected is INTERNAL with a reference
that appears in the server's log, never a Python class name or a traceback.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from devices import errors as E
from drivers import errors as D

log = logging.getLogger("authd.errors")

DOMAIN = "authd"

# Most specific first: the first class an error is an instance of decides its status.
STATUS: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (E.BadRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (E.NoSuchObject, grpc.StatusCode.NOT_FOUND),
    (E.AlreadyPresent, grpc.StatusCode.ALREADY_EXISTS),
    (E.NotPermitted, grpc.StatusCode.PERMISSION_DENIED),
    (E.WrongState, grpc.StatusCode.FAILED_PRECONDITION),
    (E.Unreachable, grpc.StatusCode.UNAVAILABLE),
    (E.LimitReached, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (E.TimedOut, grpc.StatusCode.DEADLINE_EXCEEDED),
    (E.DeviceFault, grpc.StatusCode.UNAVAILABLE),
    (D.DeviceAbsent, grpc.StatusCode.UNAVAILABLE),
    (D.DeviceTimeout, grpc.StatusCode.DEADLINE_EXCEEDED),
    (D.DeviceIOError, grpc.StatusCode.UNAVAILABLE),
    (D.DriverError, grpc.StatusCode.FAILED_PRECONDITION),
)

_DRIVER_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (D.DeviceAbsent, "DEVICE_ABSENT"),
    (D.DeviceTimeout, "DEVICE_TIMEOUT"),
    (D.DeviceIOError, "DEVICE_IO_ERROR"),
    (D.DriverError, "DEVICE_REFUSED"),
)


def status_code_of(exc: BaseException) -> grpc.StatusCode | None:
    """The status code for a project or driver error; None for anything else."""
    for cls, code in STATUS:
        if isinstance(exc, cls):
            return code
    return None


def reason_of(exc: BaseException) -> str:
    if isinstance(exc, E.AuthdError):
        return exc.reason
    for cls, reason in _DRIVER_REASONS:
        if isinstance(exc, cls):
            return reason
    return "INTERNAL"


def _packed(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def status_proto(exc: BaseException, method: str = "") -> status_pb2.Status:
    """``google.rpc.Status`` for ``exc``: code, message and details (logs unexpected errors)."""
    code = status_code_of(exc)
    if code is None:
        ref = uuid.uuid4().hex[:12]
        log.error("unexpected error in %s (ref %s): %s", method or "-", ref, type(exc).__name__,
                  exc_info=exc)
        info = error_details_pb2.ErrorInfo(reason="INTERNAL", domain=DOMAIN, metadata={"ref": ref})
        return status_pb2.Status(code=code_pb2.INTERNAL, message=f"internal error (ref {ref})",
                                 details=[_packed(info)])
    message = str(exc) or reason_of(exc).replace("_", " ").lower()
    metadata = dict(exc.metadata) if isinstance(exc, E.AuthdError) else {}
    details = [_packed(error_details_pb2.ErrorInfo(reason=reason_of(exc), domain=DOMAIN,
                                                   metadata=metadata))]
    if isinstance(exc, E.BadRequest) and exc.field:
        violation = error_details_pb2.BadRequest.FieldViolation(field=exc.field,
                                                                description=message)
        details.append(_packed(error_details_pb2.BadRequest(field_violations=[violation])))
    if isinstance(exc, E.LimitReached) and exc.retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(exc.retry_after * 1e9))
        details.append(_packed(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status_pb2.Status(code=code.value[0], message=message, details=details)


def grpc_status(exc: BaseException, method: str = "") -> grpc.Status:
    """What ``context.abort_with_status`` takes."""
    return rpc_status.to_status(status_proto(exc, method))  # type: ignore[no-any-return]


@dataclass(frozen=True)
class ErrorDetails:
    """What a client learns from a failed call beyond its code and message."""

    reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    field: str = ""
    retry_after: float | None = None


def details_of(err: grpc.RpcError) -> ErrorDetails:
    """The structured details of a failed call (empty when the server sent none)."""
    try:
        status = rpc_status.from_call(err)  # type: ignore[arg-type]
    except ValueError:
        return ErrorDetails()
    if status is None:
        return ErrorDetails()
    return details_of_status(status)


def details_of_status(status: status_pb2.Status) -> ErrorDetails:
    reason, metadata, bad_field, retry = "", {}, "", None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, metadata = info.reason, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            if bad.field_violations:
                bad_field = bad.field_violations[0].field
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info_retry = error_details_pb2.RetryInfo()
            detail.Unpack(info_retry)
            retry = info_retry.retry_delay.ToNanoseconds() / 1e9
    return ErrorDetails(reason, metadata, bad_field, retry)
