"""Uniform choices from a cryptographic byte source."""

from __future__ import annotations

import secrets
from collections.abc import Callable

RandomBytes = Callable[[int], bytes]

DEFAULT_RANDOM: RandomBytes = secrets.token_bytes

_WORD = 4
_SPAN = 1 << (8 * _WORD)


def uniform_below(random_bytes: RandomBytes, n: int) -> int:
    """A uniformly distributed integer in ``[0, n)`` (rejection sampling, no modulo bias)."""
    if n <= 0 or n > _SPAN:
        raise ValueError("n out of range")
    limit = _SPAN - (_SPAN % n)
    while True:
        raw = random_bytes(_WORD)
        if len(raw) != _WORD:
            raise ValueError("random source returned the wrong number of bytes")
        value = int.from_bytes(raw, "big")
        if value < limit:
            return value % n


def random_digits(random_bytes: RandomBytes, count: int) -> str:
    """``count`` uniformly distributed decimal digits."""
    out: list[str] = []
    while len(out) < count:
        # one byte gives a digit when below 250 (25 * 10), keeping the digits uniform
        for byte in random_bytes(max(8, count - len(out) + 4)):
            if byte < 250:
                out.append(chr(0x30 + byte % 10))
                if len(out) == count:
                    break
    return "".join(out)
