"""Every column that holds values sealed under the key-encryption key, and what each value is
bound to (its ``aad``). A rotation re-wraps exactly these; a test checks that every module
that seals is named here (tests/unit/test_kek_sealed.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from authd.certificate.additional import _aad as one_time_number_aad
from authd.certificate.service import _aad as request_code_aad
from authd.hid_otp.center import _KEY_AAD as HID_KEY_AAD
from authd.hid_otp.center import _ident_aad as hid_ident_aad
from authd.hid_otp.center import _seed_aad as hid_reservation_seed_aad
from authd.idempotency import answer_aad as idempotency_answer_aad
from authd.idempotency import request_aad as idempotency_request_aad
from authd.otp.service import seed_aad
from authd.security_card.service import codes_aad


@dataclass(frozen=True)
class SealedColumn:
    table: str
    key: str  # the primary key (one column)
    column: str
    aad: Callable[[tuple[Any, ...]], bytes]  # from (key, *context)
    owner: str  # the module that seals it
    context: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"{self.table}.{self.column}"


SEALED: tuple[SealedColumn, ...] = (
    SealedColumn("otp_devices", "serial", "seed", lambda r: seed_aad(r[0]),
                 "authd.otp.service"),
    SealedColumn("security_cards", "serial", "sealed_codes", lambda r: codes_aad(r[0]),
                 "authd.security_card.service"),
    SealedColumn("hid_devices", "device_serial", "ident_key",
                 lambda r: hid_ident_aad(int(r[0])), "authd.hid_otp.center"),
    SealedColumn("hid_keys", "name", "value", lambda r: HID_KEY_AAD, "authd.hid_otp.center"),
    SealedColumn("hid_reservations", "id", "sealed_seed",
                 lambda r: hid_reservation_seed_aad(r[0]), "authd.hid_otp.center"),
    SealedColumn("hid_reservations", "id", "sealed_ident_key",
                 lambda r: hid_ident_aad(int(r[1])), "authd.hid_otp.center", ("device_serial",)),
    SealedColumn("certificate_requests", "id", "ca_code", lambda r: request_code_aad(r[0]),
                 "authd.certificate.service"),
    SealedColumn("idempotency_keys", "id", "sealed_request",
                 lambda r: idempotency_request_aad(r[0]), "authd.idempotency"),
    SealedColumn("idempotency_keys", "id", "sealed_answer",
                 lambda r: idempotency_answer_aad(r[0]), "authd.idempotency"),
    SealedColumn("certificate_one_time_numbers", "id", "sealed",
                 lambda r: one_time_number_aad(r[1], r[2]), "authd.certificate.additional",
                 ("institution", "customer_ref")),
)
