"""Rows of the OTP center: devices (with their shared failure counter) and their registrations
at institutions. Every function takes an open transaction; none decides anything.

A device's row is locked (``lock=True``: ``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's
write transaction holds the database lock) before its counter is read, so the lockout is exact
across threads, processes and nodes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from authd.storage import Tx
from authd.storage.database import Row, Statement
from devices.otp import rules
from devices.otp.codes import Algorithm
from devices.otp.rules import Kind, Params, State

_DEVICE_COLUMNS = ("serial, kind, digits, period, algorithm, seed, last_counter, drift, state,"
                   " failures, issuer, replaced_by, warranty_until, updated_at")


@dataclass(frozen=True)
class Registration:
    institution: str
    channel: str  # "branch" or "online"
    registered_at: float
    failures_here: int
    customer_id: str  # the institution's own customer reference ('' before there was one)


@dataclass(frozen=True)
class Device:
    serial: str
    params: Params
    state: State
    failures: int
    issuer: str
    replaced_by: str | None
    warranty_until: float
    updated_at: float
    last: int
    drift: int
    sealed_seed: bytes
    registrations: tuple[Registration, ...] = ()

    def registered_at(self, institution: str) -> bool:
        return any(r.institution == institution for r in self.registrations)


@dataclass(frozen=True)
class VerificationRow:
    """What one verification reads of a device, and whether the asking institution has a
    registration of it (``registered``)."""

    params: Params
    sealed_seed: bytes
    last: int
    drift: int
    state: State
    failures: int
    registered: bool


def find(tx: Tx, serial: str, *, lock: bool) -> Device | None:
    row = tx.one(f"SELECT {_DEVICE_COLUMNS} FROM otp_devices WHERE serial = ?"
                 + (tx.for_update if lock else ""), (serial,))
    if row is None:
        return None
    regs = tx.all("SELECT institution, channel, registered_at, failures_here, customer_id"
                  " FROM otp_registrations WHERE serial = ?"
                  " ORDER BY registered_at, institution", (serial,))
    return Device(
        serial=row[0],
        params=Params(Kind(row[1]), int(row[2]), int(row[3]), Algorithm(row[4])),
        sealed_seed=bytes(row[5]), last=int(row[6]), drift=int(row[7]), state=State(row[8]),
        failures=int(row[9]), issuer=row[10], replaced_by=row[11],
        warranty_until=float(row[12]), updated_at=float(row[13]),
        registrations=tuple(Registration(r[0], r[1], float(r[2]), int(r[3]), r[4])
                            for r in regs))


def exists(tx: Tx, serial: str) -> bool:
    return tx.one("SELECT 1 FROM otp_devices WHERE serial = ?", (serial,)) is not None


def for_verification(tx: Tx, serial: str, institution: str) -> VerificationRow | None:
    """The device under its row lock, in one statement with the institution's registration."""
    return verification_row(tx.all(*verification_statement(tx, serial, institution)))


def verification_statement(tx: Tx, serial: str, institution: str) -> Statement:
    """The statement of ``for_verification``, to send with others (``Tx.all_of``)."""
    lock = tx.for_update + " OF d" if tx.for_update else ""
    return ("SELECT d.kind, d.digits, d.period, d.algorithm, d.seed, d.last_counter,"
            " d.drift, d.state, d.failures, r.institution FROM otp_devices d"
            " LEFT JOIN otp_registrations r ON r.serial = d.serial AND r.institution = ?"
            " WHERE d.serial = ?" + lock, (institution, serial))


def verification_row(rows: list[Row]) -> VerificationRow | None:
    """The device of ``verification_statement``'s rows."""
    if not rows:
        return None
    row = rows[0]
    return VerificationRow(
        params=Params(Kind(row[0]), int(row[1]), int(row[2]), Algorithm(row[3])),
        sealed_seed=bytes(row[4]), last=int(row[5]), drift=int(row[6]), state=State(row[7]),
        failures=int(row[8]), registered=row[9] is not None)


def insert_device(tx: Tx, *, serial: str, params: Params, sealed_seed: bytes, last: int,
                  issuer: str, warranty_until: float, now: float) -> None:
    tx.execute(
        "INSERT INTO otp_devices (serial, kind, digits, period, algorithm, seed, last_counter,"
        " drift, state, failures, issuer, replaced_by, warranty_until, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, 0, ?, NULL, ?, ?, ?)",
        (serial, params.kind.value, params.digits, params.period, params.algorithm.value,
         sealed_seed, last, State.ACTIVE.value, issuer, warranty_until, now, now))


def insert_device_if_absent(tx: Tx, *, serial: str, params: Params, sealed_seed: bytes,
                            last: int, drift: int, issuer: str, warranty_until: float,
                            now: float) -> bool:
    """Insert a device unless its serial exists (even one inserted by a concurrent
    transaction, on either store); whether it was inserted."""
    return tx.execute(
        "INSERT INTO otp_devices (serial, kind, digits, period, algorithm, seed, last_counter,"
        " drift, state, failures, issuer, replaced_by, warranty_until, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, NULL, ?, ?, ?) ON CONFLICT (serial) DO NOTHING",
        (serial, params.kind.value, params.digits, params.period, params.algorithm.value,
         sealed_seed, last, drift, State.ACTIVE.value, issuer, warranty_until, now, now)) == 1


def enrolled(tx: Tx, serials: list[str]) -> set[str]:
    """Which of ``serials`` are enrolled."""
    found: set[str] = set()
    for start in range(0, len(serials), 500):
        chunk = serials[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        found.update(r[0] for r in tx.all(
            f"SELECT serial FROM otp_devices WHERE serial IN ({marks})", chunk))
    return found


def add_registration(tx: Tx, serial: str, institution: str, channel: str, customer_id: str,
                     now: float) -> None:
    tx.execute("INSERT INTO otp_registrations (serial, institution, channel, registered_at,"
               " failures_here, customer_id) VALUES (?, ?, ?, ?, 0, ?)",
               (serial, institution, channel, now, customer_id))


def delete_registration(tx: Tx, serial: str, institution: str) -> None:
    tx.execute("DELETE FROM otp_registrations WHERE serial = ? AND institution = ?",
               (serial, institution))


def set_customer(tx: Tx, serial: str, institution: str, customer_id: str) -> None:
    tx.execute("UPDATE otp_registrations SET customer_id = ? WHERE serial = ? AND institution = ?",
               (customer_id, serial, institution))


def is_registered(tx: Tx, serial: str, institution: str) -> bool:
    return tx.one("SELECT 1 FROM otp_registrations WHERE serial = ? AND institution = ?",
                  (serial, institution)) is not None


def set_state(tx: Tx, serial: str, state: State, now: float,
              failures: int | None = None) -> None:
    """Change the state; with ``failures``, set the shared counter too and clear every
    institution's share."""
    if failures is None:
        tx.execute("UPDATE otp_devices SET state = ?, updated_at = ? WHERE serial = ?",
                   (state.value, now, serial))
        return
    tx.execute("UPDATE otp_devices SET state = ?, failures = ?, updated_at = ?"
               " WHERE serial = ?", (state.value, failures, now, serial))
    tx.execute("UPDATE otp_registrations SET failures_here = 0 WHERE serial = ?", (serial,))


def set_replaced(tx: Tx, serial: str, state: State, replaced_by: str, now: float) -> None:
    tx.execute("UPDATE otp_devices SET state = ?, replaced_by = ?, updated_at = ?"
               " WHERE serial = ?", (state.value, replaced_by, now, serial))


def set_position(tx: Tx, serial: str, last: int, drift: int, now: float) -> None:
    """The device's last accepted counter or step, and its clock drift (resync)."""
    tx.execute("UPDATE otp_devices SET last_counter = ?, drift = ?, updated_at = ?"
               " WHERE serial = ?", (last, drift, now, serial))


def record_accepted(tx: Tx, serial: str, last: int, failures_before: int, now: float) -> None:
    tx.execute("UPDATE otp_devices SET failures = 0, last_counter = ?, updated_at = ?"
               " WHERE serial = ?", (last, now, serial))
    if failures_before:
        tx.execute("UPDATE otp_registrations SET failures_here = 0 WHERE serial = ?",
                   (serial,))


def record_wrong(tx: Tx, serial: str, failures: int, state: State, institution: str | None,
                 now: float) -> None:
    """One more failure on the shared counter (``failures`` and ``state`` after it);
    ``institution``'s share too when it has a registration (None: no share)."""
    tx.execute("UPDATE otp_devices SET failures = ?, state = ?, updated_at = ?"
               " WHERE serial = ?", (failures, state.value, now, serial))
    if institution is not None:
        tx.execute("UPDATE otp_registrations SET failures_here = failures_here + 1"
                   " WHERE serial = ? AND institution = ?", (serial, institution))


_IN_CHUNK = 500  # serials per IN (...) list


@functools.lru_cache(maxsize=256)
def _params(kind: str, digits: int, period: int, algorithm: str) -> Params:
    return Params(Kind(kind), int(digits), int(period), Algorithm(algorithm))


def lock_for_verifications(tx: Tx, serials: Sequence[str]) -> tuple[
        dict[str, rules.DeviceState], dict[str, bytes], set[tuple[str, str]]]:
    """The devices named (row-locked, in serial order: ``serials`` sorted), their sealed seeds
    and their registrations as (serial, institution): one statement per table for a batch.

    On PostgreSQL the serials travel as one array (``= ANY``), so a batch of any size is the
    same statement (prepared once per connection), and both statements leave together (one
    round trip when pipelined); the registrations are read after the lock is held."""
    devices: dict[str, rules.DeviceState] = {}
    sealed: dict[str, bytes] = {}
    registered: set[tuple[str, str]] = set()
    chunks: list[tuple[str, Sequence[object]]]
    if tx.dialect == "postgresql":
        chunks = [("serial = ANY(?)", (list(serials),))]
    else:
        chunks = [(f"serial IN ({', '.join('?' * len(chunk))})", chunk)
                  for chunk in (list(serials[first:first + _IN_CHUNK])
                                for first in range(0, len(serials), _IN_CHUNK))]
    for where, params in chunks:
        device_rows, registration_rows = tx.all_of([
            ("SELECT serial, kind, digits, period, algorithm, seed, last_counter, drift,"
             f" state, failures FROM otp_devices WHERE {where}"
             " ORDER BY serial" + tx.for_update, params),
            (f"SELECT serial, institution FROM otp_registrations WHERE {where}", params)])
        for row in device_rows:
            serial = row[0]
            devices[serial] = rules.DeviceState(
                serial, _params(row[1], row[2], row[3], row[4]), State(row[8]),
                int(row[9]), int(row[6]), int(row[7]))
            sealed[serial] = bytes(row[5])
        registered.update((r[0], r[1]) for r in registration_rows)
    return devices, sealed, registered


def verification_lookup(rows: list[Row], serial: str, institution: str) -> tuple[
        dict[str, rules.DeviceState], dict[str, bytes], set[tuple[str, str]]]:
    """``lock_for_verifications``' answer for one device, from ``verification_statement``'s
    rows for ``serial`` and ``institution`` (run earlier in the transaction)."""
    row = verification_row(rows)
    if row is None:
        return {}, {}, set()
    device = rules.DeviceState(serial, row.params, row.state, row.failures, row.last, row.drift)
    return ({serial: device}, {serial: row.sealed_seed},
            {(serial, institution)} if row.registered else set())


def record_verifications(tx: Tx, changed: Sequence[rules.DeviceState], resets: Sequence[str],
                         shares: Sequence[tuple[tuple[str, str], int]], now: float) -> None:
    """A batch's outcome, one statement per kind of change: the devices' new counters and
    states, the devices whose every share goes back to 0 (before the increments), and the
    failures to add to (serial, institution) shares. On PostgreSQL each is one statement
    for the whole batch (the rows travel as arrays); on SQLite one ``executemany``. Every
    row written is of a device the batch holds locked (``lock_for_verifications``)."""
    if tx.dialect == "postgresql":
        _record_verifications_pg(tx, changed, resets, shares, now)
        return
    if changed:
        tx.executemany(
            "UPDATE otp_devices SET failures = ?, state = ?, last_counter = ?,"
            " updated_at = ? WHERE serial = ?",
            [(d.failures, d.state.value, d.last, now, d.serial) for d in changed])
    if resets:
        tx.executemany("UPDATE otp_registrations SET failures_here = 0 WHERE serial = ?",
                       [(serial,) for serial in resets])
    if shares:
        tx.executemany("UPDATE otp_registrations SET failures_here = failures_here + ?"
                       " WHERE serial = ? AND institution = ?",
                       [(count, serial, institution)
                        for (serial, institution), count in shares])


def _record_verifications_pg(tx: Tx, changed: Sequence[rules.DeviceState],
                             resets: Sequence[str],
                             shares: Sequence[tuple[tuple[str, str], int]], now: float) -> None:
    if changed:
        tx.execute(
            "UPDATE otp_devices AS d SET failures = v.failures, state = v.state,"
            " last_counter = v.last, updated_at = ?"
            " FROM unnest(?::text[], ?::integer[], ?::text[], ?::bigint[])"
            " AS v(serial, failures, state, last) WHERE d.serial = v.serial",
            (now, [d.serial for d in changed], [d.failures for d in changed],
             [d.state.value for d in changed], [d.last for d in changed]))
    if resets:
        tx.execute("UPDATE otp_registrations SET failures_here = 0 WHERE serial = ANY(?)",
                   (list(resets),))
    if shares:
        tx.execute(
            "UPDATE otp_registrations AS r SET failures_here = r.failures_here + v.n"
            " FROM unnest(?::text[], ?::text[], ?::integer[]) AS v(serial, institution, n)"
            " WHERE r.serial = v.serial AND r.institution = v.institution",
            ([serial for (serial, _), _ in shares], [inst for (_, inst), _ in shares],
             [count for _, count in shares]))


@dataclass(frozen=True)
class CustomerDevice:
    """A device as one institution's customer holds it: the institution's registration and
    the device's shared state."""

    serial: str
    registration: Registration
    state: State
    failures: int
    issuer: str
    replaced_by: str | None
    updated_at: float


def registered_for(tx: Tx, institution: str, customer_id: str) -> list[CustomerDevice]:
    """The devices registered at ``institution`` for its customer ``customer_id``."""
    rows = tx.all("SELECT d.serial, r.channel, r.registered_at, r.failures_here, d.state,"
                  " d.failures, d.issuer, d.replaced_by, d.updated_at"
                  " FROM otp_registrations r JOIN otp_devices d ON d.serial = r.serial"
                  " WHERE r.institution = ? AND r.customer_id = ?"
                  " ORDER BY r.registered_at, d.serial", (institution, customer_id))
    return [CustomerDevice(
        serial=r[0], registration=Registration(institution, r[1], float(r[2]), int(r[3]),
                                               customer_id),
        state=State(r[4]), failures=int(r[5]), issuer=r[6], replaced_by=r[7],
        updated_at=float(r[8])) for r in rows]
