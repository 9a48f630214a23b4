"""The policy's rows in the store: plain functions over an open transaction."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from authd.storage import Tx
from authd.storage.database import Row, Statement
from devices.policy.counters import Counter, InputKind
from devices.policy.exemptions import Agreements
from devices.policy.grades import Contract, CustomerKind, Grade, Limits
from devices.policy.inactivity import Activity
from devices.policy.terminals import DeviceInfo

_CUSTOMER = ("kind, agreed_at, registered_at, last_used_at, lifted_at, special_agreement,"
             " sms_result_notice, overseas_departure, per_transfer_limit, daily_limit,"
             " contract_ref, contract_grade, contract_per_transfer, contract_daily, updated_at")


@dataclass(frozen=True)
class Customer:
    institution: str
    customer_id: str
    kind: CustomerKind
    activity: Activity
    agreements: Agreements
    own_limits: Limits | None
    contract: Contract | None
    updated_at: float


def _customer(institution: str, customer_id: str, r: tuple[Any, ...]) -> Customer:
    contract = (Contract(r[10], Grade(r[11]), Limits(int(r[12]), int(r[13]))) if r[10]
                else None)
    own = Limits(int(r[8]), int(r[9])) if int(r[8]) else None
    return Customer(institution, customer_id, CustomerKind(r[0]),
                    Activity(float(r[1]), float(r[2]), float(r[3]), float(r[4])),
                    Agreements(bool(r[5]), bool(r[6]), bool(r[7])), own, contract, float(r[14]))


def serialize_customer(tx: Tx, institution: str, customer_id: str) -> None:
    """Hold, until ``tx`` ends, the lock that orders a customer's setup against registrations
    of OTP devices for it (the corporate master rule reads the one and writes the other, so
    two transactions could each miss what the other writes). SQLite serializes every write
    transaction already; PostgreSQL takes a transaction-scoped advisory lock on the customer,
    which may not have a row yet."""
    if tx.dialect != "postgresql":
        return
    digest = hashlib.sha256(f"policy-customer\x00{institution}\x00{customer_id}".encode())
    tx.one("SELECT pg_advisory_xact_lock(?)",
           (int.from_bytes(digest.digest()[:8], "big", signed=True),))


def customer(tx: Tx, institution: str, customer_id: str, *, lock: bool) -> Customer | None:
    row = tx.one(f"SELECT {_CUSTOMER} FROM policy_customers WHERE institution = ? AND"
                 " customer_id = ?" + (tx.for_update if lock else ""),
                 (institution, customer_id))
    return None if row is None else _customer(institution, customer_id, row)


@dataclass(frozen=True)
class Locked:
    """A customer's row, locked, with everything a decision reads beside it: today's total, a
    restricted identity input, the incident-list fields the terminal hits, the earlier
    decision of this key or order, how many terminals are designated, and the rows of the
    statements the caller added (the customer's media, the presented OTP device), each
    parsed by its owner."""

    customer: Customer
    used_today: int
    restricted: str | None
    incident_fields: list[str]
    earlier: DecisionRow | None  # the decision given to this key, or to the same order
    terminal_count: int
    extra_rows: list[list[Row]]


def lock_for_decision(tx: Tx, institution: str, customer_id: str, day: str,
                      incident_keys: list[tuple[str, str]], key: str, fingerprint: str,
                      since: float, extra: Sequence[Statement] = ()) -> Locked | None:
    """The customer's row under ``FOR UPDATE`` (PostgreSQL; SQLite's write transaction holds
    the lock), then what the decision reads in one statement, then the ``extra`` statements,
    all sent at once (``Tx.all_of``: one round trip when pipelined). The statements after the
    lock run once it is granted, each in a snapshot of its own, so they see what the lock's
    previous holder committed (the lock statement's own subqueries would not: PostgreSQL
    reads them in the snapshot taken before the lock was granted)."""
    hits = " OR ".join("(i.field = ? AND i.value = ?)" for _ in incident_keys) or "1 = 0"
    statements: list[Statement] = [
        (f"SELECT {_CUSTOMER} FROM policy_customers WHERE institution = ? AND customer_id = ?"
         + tx.for_update, (institution, customer_id)),
        ("SELECT (SELECT d.used FROM policy_daily_totals d WHERE d.institution = ? AND"
         "  d.customer_id = ? AND d.day = ?),"
         " (SELECT MIN(k.kind) FROM policy_input_counters k WHERE k.institution = ?"
         "  AND k.customer_id = ? AND k.restricted = 1),"
         " (SELECT MIN(i.field) FROM policy_incidents i WHERE i.withdrawn_at IS NULL AND"
         f"  ({hits})),"
         " (SELECT COUNT(*) FROM policy_terminals t WHERE t.institution = ? AND"
         "  t.customer_id = ?), k.*, o.*"
         f" FROM (SELECT 1 AS one) s LEFT JOIN ({_BY_KEY}) k ON 1 = 1"
         f" LEFT JOIN ({_SAME_ORDER}) o ON 1 = 1",
         (institution, customer_id, day, institution, customer_id,
          *[p for k in incident_keys for p in k], institution, customer_id,
          institution, key, institution, customer_id, since, fingerprint)),
        *extra,
    ]
    found, state, *extra_rows = tx.all_of(statements)
    if not found:
        return None
    used, restricted, hit, terminal_count, *decisions = state[0]
    width = len(decisions) // 2
    by_key, same_order = tuple(decisions[:width]), tuple(decisions[width:])
    earlier = (_decision(by_key) if by_key[0] is not None
               else _decision(same_order) if same_order[0] is not None else None)
    fields = [] if hit is None else sorted(
        {h.field for h in incidents_matching(tx, list(incident_keys))})
    return Locked(_customer(institution, customer_id, found[0]), int(used or 0), restricted,
                  fields, earlier, int(terminal_count), extra_rows)


def insert_customer(tx: Tx, c: Customer) -> None:
    contract = c.contract
    tx.execute(
        f"INSERT INTO policy_customers (institution, customer_id, {_CUSTOMER})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (c.institution, c.customer_id, c.kind.value, c.activity.agreed_at,
         c.activity.registered_at, c.activity.last_used_at, c.activity.lifted_at,
         int(c.agreements.special_agreement), int(c.agreements.sms_result_notice),
         int(c.agreements.overseas_departure_confirmed),
         c.own_limits.per_transfer if c.own_limits else 0,
         c.own_limits.daily if c.own_limits else 0,
         contract.reference if contract else "", contract.grade.value if contract else "",
         contract.ceiling.per_transfer if contract else 0,
         contract.ceiling.daily if contract else 0, c.updated_at))


def update_customer(tx: Tx, c: Customer) -> None:
    tx.execute("DELETE FROM policy_customers WHERE institution = ? AND customer_id = ?",
               (c.institution, c.customer_id))
    insert_customer(tx, c)


def touch_used(tx: Tx, institution: str, customer_id: str, now: float) -> None:
    tx.execute("UPDATE policy_customers SET last_used_at = ? WHERE institution = ? AND"
               " customer_id = ?", (now, institution, customer_id))


# ----------------------------------------------------------------------- daily totals

def used_on(tx: Tx, institution: str, customer_id: str, day: str) -> int:
    row = tx.one("SELECT used FROM policy_daily_totals WHERE institution = ? AND"
                 " customer_id = ? AND day = ?", (institution, customer_id, day))
    return int(row[0]) if row else 0


def add_used(tx: Tx, institution: str, customer_id: str, day: str, amount: int) -> None:
    tx.execute("INSERT INTO policy_daily_totals (institution, customer_id, day, used)"
               " VALUES (?, ?, ?, ?) ON CONFLICT (institution, customer_id, day)"
               " DO UPDATE SET used = policy_daily_totals.used + excluded.used",
               (institution, customer_id, day, amount))


# ----------------------------------------------------------------------- decisions

@dataclass(frozen=True)
class DecisionRow:
    id: str
    customer_id: str
    idempotency_key: str
    fingerprint: str
    outcome: str
    amount: int
    consumed: int
    day: str
    released_at: float | None
    decision: dict[str, Any]
    device: dict[str, str]
    decided_at: float


_DECISION = ("id, customer_id, idempotency_key, fingerprint, outcome, amount, consumed, day,"
             " released_at, decision, device, decided_at")


def _decision(r: tuple[Any, ...]) -> DecisionRow:
    return DecisionRow(r[0], r[1], r[2], r[3], r[4], int(r[5]), int(r[6]), r[7],
                       None if r[8] is None else float(r[8]), json.loads(r[9]),
                       json.loads(r[10]), float(r[11]))


def decision_by_id(tx: Tx, institution: str, decision_id: str, *,
                   lock: bool = False) -> DecisionRow | None:
    row = tx.one(f"SELECT {_DECISION} FROM policy_decisions WHERE institution = ? AND id = ?"
                 + (tx.for_update if lock else ""), (institution, decision_id))
    return None if row is None else _decision(row)


# The decision given to an idempotency key (the unique index), and the first approved (and
# not cancelled) decision of the same order since a time (the customer's index): two
# lookups an index answers each, where one condition with OR would scan the table.
_BY_KEY = f"SELECT {_DECISION} FROM policy_decisions WHERE institution = ? AND idempotency_key = ?"
_SAME_ORDER = (f"SELECT {_DECISION} FROM policy_decisions WHERE institution = ? AND"
               " customer_id = ? AND decided_at >= ? AND fingerprint = ? AND"
               " outcome = 'approved' AND released_at IS NULL ORDER BY decided_at LIMIT 1")


def insert_decision(tx: Tx, institution: str, row: DecisionRow, keep_until: float) -> None:
    tx.execute(
        f"INSERT INTO policy_decisions (institution, {_DECISION}, keep_until)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (institution, row.id, row.customer_id, row.idempotency_key, row.fingerprint,
         row.outcome, row.amount, row.consumed, row.day, row.released_at,
         json.dumps(row.decision, sort_keys=True, ensure_ascii=False),
         json.dumps(row.device, sort_keys=True), row.decided_at, keep_until))


def release(tx: Tx, institution: str, decision_id: str, now: float) -> None:
    tx.execute("UPDATE policy_decisions SET released_at = ? WHERE institution = ? AND id = ?",
               (now, institution, decision_id))


def decisions_of(tx: Tx, institution: str, customer_id: str, since: float, until: float,
                 limit: int) -> list[DecisionRow]:
    rows = tx.all(f"SELECT {_DECISION} FROM policy_decisions WHERE institution = ? AND"
                  " customer_id = ? AND decided_at >= ? AND decided_at < ?"
                  " ORDER BY decided_at, id LIMIT ?", (institution, customer_id, since, until,
                                                      limit))
    return [_decision(r) for r in rows]


def prune_decisions(tx: Tx, now: float) -> int:
    return tx.execute("DELETE FROM policy_decisions WHERE keep_until < ?", (now,))


# ----------------------------------------------------------------------- terminals

@dataclass(frozen=True)
class Terminal:
    id: str
    customer_id: str
    label: str
    device: DeviceInfo
    channel: str
    registered_at: float


_TERMINALS = ("SELECT id, customer_id, label, device, channel, registered_at FROM"
              " policy_terminals WHERE institution = ? AND customer_id = ?"
              " ORDER BY registered_at, id")


def _terminal(r: Row) -> Terminal:
    return Terminal(r[0], r[1], r[2], DeviceInfo(**json.loads(r[3])), r[4], float(r[5]))


def terminals(tx: Tx, institution: str, customer_id: str) -> list[Terminal]:
    return [_terminal(r) for r in tx.all(_TERMINALS, (institution, customer_id))]


def insert_terminal(tx: Tx, institution: str, customer_id: str, label: str,
                    device: DeviceInfo, channel: str, now: float) -> Terminal:
    t = Terminal(uuid.uuid4().hex, customer_id, label, device, channel, now)
    tx.execute("INSERT INTO policy_terminals (id, institution, customer_id, label, device,"
               " channel, registered_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
               (t.id, institution, customer_id, label,
                json.dumps(device.as_dict(), sort_keys=True), channel, now))
    return t


def delete_terminal(tx: Tx, institution: str, customer_id: str, terminal_id: str) -> int:
    return tx.execute("DELETE FROM policy_terminals WHERE institution = ? AND customer_id = ?"
                      " AND id = ?", (institution, customer_id, terminal_id))


# ----------------------------------------------------------------------- input counters

def counters(tx: Tx, institution: str, customer_id: str,
             thresholds: dict[InputKind, int]) -> dict[InputKind, Counter]:
    found = {InputKind(r[0]): (int(r[1]), bool(r[2])) for r in tx.all(
        "SELECT kind, failures, restricted FROM policy_input_counters WHERE institution = ?"
        " AND customer_id = ?", (institution, customer_id))}
    return {k: Counter(k, *found.get(k, (0, False)), threshold)
            for k, threshold in thresholds.items()}


def put_counter(tx: Tx, institution: str, customer_id: str, c: Counter, now: float) -> None:
    tx.execute("INSERT INTO policy_input_counters (institution, customer_id, kind, failures,"
               " restricted, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
               " ON CONFLICT (institution, customer_id, kind) DO UPDATE SET"
               " failures = excluded.failures, restricted = excluded.restricted,"
               " updated_at = excluded.updated_at",
               (institution, customer_id, c.kind.value, c.failures, int(c.restricted), now))


# ----------------------------------------------------------------------- incidents

@dataclass(frozen=True)
class Incident:
    id: str
    field: str
    value: str
    reported_by: str
    reason: str
    reported_at: float


def incidents_matching(tx: Tx, keys: list[tuple[str, str]]) -> list[Incident]:
    if not keys:
        return []
    where = " OR ".join("(field = ? AND value = ?)" for _ in keys)
    params = [p for k in keys for p in k]
    rows = tx.all("SELECT id, field, value, reported_by, reason, reported_at FROM"
                  f" policy_incidents WHERE withdrawn_at IS NULL AND ({where})"
                  " ORDER BY field", params)
    return [Incident(r[0], r[1], r[2], r[3], r[4], float(r[5])) for r in rows]


def live_incident(tx: Tx, field: str, value: str, reported_by: str) -> Incident | None:
    """The live entry ``reported_by`` keeps of an identifier (each institution keeps its own)."""
    return next((i for i in incidents_matching(tx, [(field, value)])
                 if i.reported_by == reported_by), None)


def insert_incident(tx: Tx, field: str, value: str, reported_by: str, reason: str,
                    now: float) -> Incident:
    inc = Incident(uuid.uuid4().hex, field, value, reported_by, reason, now)
    tx.execute("INSERT INTO policy_incidents (id, field, value, reported_by, reason,"
               " reported_at, withdrawn_at) VALUES (?, ?, ?, ?, ?, ?, NULL)",
               (inc.id, field, value, reported_by, reason, now))
    return inc


def withdraw_incident(tx: Tx, incident_id: str, now: float) -> int:
    return tx.execute("UPDATE policy_incidents SET withdrawn_at = ? WHERE id = ? AND"
                      " withdrawn_at IS NULL", (now, incident_id))


def incident_by_id(tx: Tx, incident_id: str) -> Incident | None:
    r = tx.one("SELECT id, field, value, reported_by, reason, reported_at FROM"
               " policy_incidents WHERE id = ? AND withdrawn_at IS NULL", (incident_id,))
    return None if r is None else Incident(r[0], r[1], r[2], r[3], r[4], float(r[5]))


def incidents_reported_by(tx: Tx, institution: str, limit: int = 1000) -> list[Incident]:
    rows = tx.all("SELECT id, field, value, reported_by, reason, reported_at FROM"
                  " policy_incidents WHERE withdrawn_at IS NULL AND reported_by = ?"
                  " ORDER BY reported_at LIMIT ?", (institution, limit))
    return [Incident(r[0], r[1], r[2], r[3], r[4], float(r[5])) for r in rows]
