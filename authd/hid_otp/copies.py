"""A branch node's copy of the provisioning records the center answered for the devices
attached here (``hid_branch_records``), so that ``ListDevices`` still answers while the center
is unreachable, saying how old each answer is.

The copy holds what the center told the institution the node acts for, nothing more: a
record as that institution may see it (docs/hid_otp.md "Who sees a provisioning record"), or
that the center knew no record for the device, with the time of the answer. It is written on
every answer of the center (listing, provisioning, settling) and only read when the center
cannot be asked. It is never a source of truth for provisioning: that is refused without the
center, as before.

An answer is used for ``max_age`` seconds (``[hid_otp] branch_copy_max_age``). Older, it is
purged: the record is erased, and a mark stays that an answer was kept and when (``expired``),
so that the node says "too old" for that device rather than "never answered"; the next answer
of the center replaces the mark."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from authd.hid_otp.center import ProvisioningRecord
from authd.storage import Database, Tx


@dataclass(frozen=True)
class CopiedRecord:
    record: ProvisioningRecord | None  # None: the center knew no record for the device
    checked_at: float  # when the center answered so
    expired: bool = False  # older than max_age: purged, the record is not known any more


class BranchCopies:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time, *,
                 max_age: float = 86400.0) -> None:
        self.db = db
        self.clock = clock
        self.max_age = max_age

    def save(self, institution: str, asked: Sequence[int],
             found: Mapping[int, ProvisioningRecord]) -> float:
        """Keep the center's answer for every device ``asked`` (``found``: its records);
        returns the time recorded."""
        now = self.clock()
        serials = list(dict.fromkeys(s for s in asked if s))
        if not serials:
            return now

        def write(tx: Tx) -> None:
            for serial in serials:
                r = found.get(serial)
                tx.execute(
                    "INSERT INTO hid_branch_records (institution, device_serial, otp_serial,"
                    " record_institution, firmware, digits, identification, provisioned_at,"
                    " checked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (institution, device_serial) DO UPDATE SET"
                    " otp_serial = excluded.otp_serial,"
                    " record_institution = excluded.record_institution,"
                    " firmware = excluded.firmware, digits = excluded.digits,"
                    " identification = excluded.identification,"
                    " provisioned_at = excluded.provisioned_at, checked_at = excluded.checked_at,"
                    " expired_at = NULL"
                    " WHERE hid_branch_records.checked_at <= excluded.checked_at",
                    (institution, serial, r.otp_serial if r else None,
                     r.institution if r else "", r.firmware if r else "",
                     r.digits if r else 0, int(r.identification) if r else 0,
                     r.provisioned_at if r else 0.0, now))
            self._purge(tx, now)

        self.db.run(write)
        return now

    def purge(self) -> int:
        """Erase every answer older than ``max_age``; returns how many were erased now."""
        now = self.clock()
        return self.db.run(lambda tx: self._purge(tx, now))

    def _purge(self, tx: Tx, now: float) -> int:
        return tx.execute(
            "UPDATE hid_branch_records SET otp_serial = NULL, record_institution = '',"
            " firmware = '', digits = 0, identification = 0, provisioned_at = 0,"
            " expired_at = ? WHERE expired_at IS NULL AND checked_at < ?",
            (now, now - self.max_age))

    def load(self, institution: str, serials: Sequence[int]) -> dict[int, CopiedRecord]:
        """The last answers kept for ``serials`` (a device never answered for is absent; one
        answered longer than ``max_age`` ago is purged first and comes back ``expired``)."""
        wanted = list(dict.fromkeys(s for s in serials if s))
        if not wanted:
            return {}
        now = self.clock()

        def read(tx: Tx) -> dict[int, CopiedRecord]:
            self._purge(tx, now)
            out = {}
            for serial in wanted:
                row = tx.one(
                    "SELECT otp_serial, record_institution, firmware, digits, identification,"
                    " provisioned_at, checked_at, expired_at FROM hid_branch_records"
                    " WHERE institution = ? AND device_serial = ?", (institution, serial))
                if row is None:
                    continue
                if row[7] is not None:
                    out[serial] = CopiedRecord(None, float(row[6]), expired=True)
                    continue
                record = None if row[0] is None else ProvisioningRecord(
                    serial, row[0], row[1], row[2], int(row[3]), bool(row[4]), float(row[5]))
                out[serial] = CopiedRecord(record, float(row[6]))
            return out

        return self.db.run(read)
