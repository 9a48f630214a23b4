"""A certificate's chain to the configured CA certificates (RFC 5280 6.1, the parts a relying
bank needs): each link issued and signed by the next, every CA a CA, every link valid now."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509

from devices.certificate.revocation import signed_by

MAX_DEPTH = 4


@dataclass(frozen=True)
class Chain:
    """The path from the leaf to a trust anchor: ``links[0]`` is the leaf, ``links[-1]`` the
    anchor; ``issuer`` is the leaf's issuing CA (the one that answers for its status)."""

    links: tuple[x509.Certificate, ...]

    @property
    def issuer(self) -> x509.Certificate:
        return self.links[1]


class ChainError(Exception):
    """The certificate does not chain to a trusted CA (message says why)."""


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def build_chain(leaf: x509.Certificate, anchors: Sequence[x509.Certificate],
                intermediates: Sequence[x509.Certificate], now: dt.datetime) -> Chain:
    links = [leaf]
    pool = list(intermediates) + list(anchors)
    current = leaf
    for _ in range(MAX_DEPTH):
        if current in anchors and len(links) > 1:
            break
        issuer = next((c for c in pool if c.subject == current.issuer and _is_ca(c)
                       and signed_by(current, c.public_key())), None)
        if issuer is None:
            raise ChainError(f"no trusted CA issued {current.subject.rfc4514_string()!r}")
        links.append(issuer)
        if issuer in anchors:
            break
        current = issuer
    else:
        raise ChainError("the chain is longer than allowed")
    if links[-1] not in anchors:
        raise ChainError("the chain does not end at a trusted CA")
    for link in links[1:]:
        if not link.not_valid_before_utc <= now <= link.not_valid_after_utc:
            raise ChainError(f"CA certificate {link.subject.rfc4514_string()!r} is not valid "
                             "now")
    return Chain(tuple(links))
