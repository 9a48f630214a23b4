"""Certificate types and their fees (the issuance page, step 1; configuration in
``[certificate] types``)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from devices.errors import BadRequest, NoSuchObject

CODE = re.compile(r"[a-z][a-z0-9_]{1,31}")


@dataclass(frozen=True)
class CertificateType:
    code: str  # banking, universal, e_tax
    name: str
    fee_krw: int  # per year of validity
    usage: str

    @classmethod
    def from_toml(cls, entry: Any) -> CertificateType:
        """``{code = "universal", name = "...", fee_krw = 4400, usage = "..."}``."""
        if not isinstance(entry, Mapping):
            raise ValueError("each type is a table {code, name, fee_krw, usage}")
        unknown = sorted(set(entry) - {"code", "name", "fee_krw", "usage"})
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(unknown)}")
        code, name = entry.get("code"), entry.get("name", "")
        fee, usage = entry.get("fee_krw", 0), entry.get("usage", "")
        if not isinstance(code, str) or CODE.fullmatch(code) is None:
            raise ValueError("code must be 2..32 lower-case letters, digits or _")
        if not isinstance(fee, int) or isinstance(fee, bool) or not 0 <= fee <= 10_000_000:
            raise ValueError("fee_krw must be an integer 0..10000000")
        if not isinstance(name, str) or not isinstance(usage, str):
            raise ValueError("name and usage must be text")
        return cls(code, name or code, fee, usage)


# The issuance page's three types: free for banking, card, insurance, year-end tax and
# e-government; universal and e-tax at 4,400 KRW a year.
DEFAULT_TYPES: tuple[CertificateType, ...] = (
    CertificateType("banking", "은행·신용카드·보험용 (free)", 0,
                    "internet banking, credit card payment, insurance, year-end tax "
                    "settlement, e-government"),
    CertificateType("universal", "범용 (universal)", 4400,
                    "every electronic transaction: banking, cards, insurance, securities, "
                    "e-bidding"),
    CertificateType("e_tax", "전자세금용 (e-tax)", 4400,
                    "the National Tax Service's e-tax services and electronic tax invoices"),
)


def find(types: Iterable[CertificateType], code: str) -> CertificateType:
    for kind in types:
        if kind.code == code:
            return kind
    known = ", ".join(t.code for t in types)
    raise NoSuchObject(f"no certificate type {code!r} (known: {known})",
                       reason="UNKNOWN_CERTIFICATE_TYPE")


def check_unique(types: Iterable[CertificateType]) -> list[str]:
    seen: set[str] = set()
    out = []
    for kind in types:
        if kind.code in seen:
            out.append(f"types: {kind.code!r} appears twice")
        seen.add(kind.code)
    return out


def code_of(value: str) -> str:
    if CODE.fullmatch(value) is None:
        raise BadRequest("certificate_type must be a type code such as banking, universal",
                         field="certificate_type")
    return value
