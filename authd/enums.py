"""One table between a domain enum and a proto enum, read both ways.

Every ``authd/<medium>/convert.py`` names its tables with it::

    KIND = EnumMap("kind", {Kind.TOTP: otp_pb2.OTP_KIND_TOTP, Kind.HOTP: otp_pb2.OTP_KIND_HOTP})
    KIND.to_pb(Kind.TOTP)               # otp_pb2.OTP_KIND_TOTP
    KIND.from_pb(request.kind)          # Kind, or BadRequest naming the field
    KIND.from_pb(request.kind, Kind.TOTP)  # UNSPECIFIED (0) gives the default

A number the table does not hold (an UNSPECIFIED left out, or a value from a newer client) is
a ``BadRequest`` with the field and the accepted values, never a ``KeyError``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from typing import Generic, TypeVar, overload

from devices.errors import BadRequest

D = TypeVar("D", bound=Hashable)
P = TypeVar("P", bound=int)
T = TypeVar("T")
UNSPECIFIED = 0


def _name(value: object) -> str:
    """How a value is named to a client: an enum member by its name (the proto's suffix)."""
    return str(getattr(value, "name", value))


class EnumMap(Generic[D, P]):
    def __init__(self, field: str, pairs: Mapping[D, P], *, what: str = "") -> None:
        self.field = field
        self._to_pb: dict[D, P] = dict(pairs)
        self._from_pb: dict[int, D] = {}
        for domain, number in self._to_pb.items():
            if int(number) in self._from_pb:
                raise ValueError(f"{field}: proto value {number} is mapped twice")
            self._from_pb[int(number)] = domain
        self.what = what or ", ".join(_name(d) for d in self._to_pb)

    def to_pb(self, value: D) -> P:
        return self._to_pb[value]

    def to_pb_or(self, value: object, default: P) -> P:
        """The proto number of ``value``, or ``default`` for a value the table does not hold
        (a row written before the value existed)."""
        for domain, number in self._to_pb.items():
            if domain == value:
                return number
        return default

    @overload
    def from_pb(self, number: int, *, field: str = "") -> D: ...

    @overload
    def from_pb(self, number: int, default: T, *, field: str = "") -> D | T: ...

    def from_pb(self, number: int, default: object = ..., *, field: str = "") -> object:
        """The domain value of ``number``; with ``default``, UNSPECIFIED (0) gives it.
        ``field`` names the request's field when it is not the table's own name."""
        if default is not ... and number == UNSPECIFIED:
            return default
        try:
            return self._from_pb[int(number)]
        except KeyError:
            name = field or self.field
            raise BadRequest(f"{name} must be one of: {self.what} (not {number})",
                             field=name) from None

    def __iter__(self) -> Iterator[D]:
        return iter(self._to_pb)

    def __contains__(self, value: object) -> bool:
        return value in self._to_pb
