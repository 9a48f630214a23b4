"""SQL for security cards and their challenges (portable: SQLite and PostgreSQL).

Counters change in single statements under the card's row lock; a challenge is consumed by
one conditional UPDATE, so it is used once even when verifies race.
"""

from __future__ import annotations

from dataclasses import dataclass

from authd.storage import Tx
from devices.security_card import (
    CardSpec,
    CardState,
    Challenge,
    DigitRequest,
)
from devices.security_card.verification import CARD_STATE_BY_NAME, CARD_STATE_NAMES

MEDIUM_PRINTED = "printed"
MEDIUM_BRAILLE = "braille"
LIVE_STATES = ("active", "restricted")

_CARD_COLUMNS = (
    "serial, institution, customer_id, medium, layout, state, failures, code_count,"
    " code_digits, sealed_codes, replaces, replaced_by, print_count, last_print_state,"
    " issued_at, updated_at"
)


@dataclass(frozen=True)
class CardRow:
    serial: str
    institution: str
    customer_id: str
    medium: str
    layout: str
    state: CardState
    failures: int
    code_count: int
    code_digits: int
    sealed_codes: bytes
    replaces: str
    replaced_by: str
    print_count: int
    last_print_state: str
    issued_at: float
    updated_at: float

    @property
    def braille(self) -> bool:
        return self.medium == MEDIUM_BRAILLE

    @property
    def live(self) -> bool:
        return self.state in (CardState.ACTIVE, CardState.RESTRICTED)

    @property
    def spec(self) -> CardSpec:
        return CardSpec(code_count=self.code_count, code_digits=self.code_digits)

    def __repr__(self) -> str:  # never show the sealed blob
        return f"CardRow(serial={self.serial!r}, state={self.state.name}, failures={self.failures})"


@dataclass(frozen=True)
class ChallengeRow:
    challenge: Challenge
    institution: str
    used_at: float | None
    outcome: str


def _card(row: tuple[object, ...]) -> CardRow:
    return CardRow(
        serial=str(row[0]),
        institution=str(row[1]),
        customer_id=str(row[2]),
        medium=str(row[3]),
        layout=str(row[4]),
        state=CARD_STATE_BY_NAME[str(row[5])],
        failures=int(row[6]),  # type: ignore[call-overload]
        code_count=int(row[7]),  # type: ignore[call-overload]
        code_digits=int(row[8]),  # type: ignore[call-overload]
        sealed_codes=bytes(row[9]),  # type: ignore[call-overload]
        replaces=str(row[10]),
        replaced_by=str(row[11]),
        print_count=int(row[12]),  # type: ignore[call-overload]
        last_print_state=str(row[13]),
        issued_at=float(row[14]),  # type: ignore[arg-type]
        updated_at=float(row[15]),  # type: ignore[arg-type]
    )


def get_card(tx: Tx, serial: str, lock: bool = False) -> CardRow | None:
    row = tx.one(
        f"SELECT {_CARD_COLUMNS} FROM security_cards WHERE serial = ?"
        + (tx.for_update if lock else ""),
        (serial,),
    )
    return _card(row) if row is not None else None


def live_card_for(tx: Tx, institution: str, customer_id: str) -> CardRow | None:
    row = tx.one(
        f"SELECT {_CARD_COLUMNS} FROM security_cards"
        " WHERE institution = ? AND customer_id = ? AND state IN ('active', 'restricted')",
        (institution, customer_id),
    )
    return _card(row) if row is not None else None


def cards_of(tx: Tx, institution: str, customer_id: str) -> list[CardRow]:
    """Every card the institution issued to its customer (live or not), oldest first."""
    rows = tx.all(
        f"SELECT {_CARD_COLUMNS} FROM security_cards"
        " WHERE institution = ? AND customer_id = ? ORDER BY issued_at, serial",
        (institution, customer_id),
    )
    return [_card(row) for row in rows]


def insert_card(tx: Tx, card: CardRow) -> None:
    tx.execute(
        f"INSERT INTO security_cards ({_CARD_COLUMNS})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            card.serial,
            card.institution,
            card.customer_id,
            card.medium,
            card.layout,
            CARD_STATE_NAMES[card.state],
            card.failures,
            card.code_count,
            card.code_digits,
            card.sealed_codes,
            card.replaces,
            card.replaced_by,
            card.print_count,
            card.last_print_state,
            card.issued_at,
            card.updated_at,
        ),
    )


def set_state(tx: Tx, serial: str, state: CardState, now: float, replaced_by: str = "") -> None:
    tx.execute(
        "UPDATE security_cards SET state = ?, updated_at = ?,"
        " replaced_by = CASE WHEN ? = '' THEN replaced_by ELSE ? END WHERE serial = ?",
        (CARD_STATE_NAMES[state], now, replaced_by, replaced_by, serial),
    )


def reset_failures(tx: Tx, serial: str, now: float) -> None:
    tx.execute(
        "UPDATE security_cards SET failures = 0, state = 'active', updated_at = ?"
        " WHERE serial = ? AND state IN ('active', 'restricted')",
        (now, serial),
    )


def add_failure(tx: Tx, serial: str, max_failures: int, now: float) -> None:
    """One more consecutive failure, restricting the card at the limit (one statement)."""
    tx.execute(
        "UPDATE security_cards SET failures = failures + 1,"
        " state = CASE WHEN failures + 1 >= ? THEN 'restricted' ELSE state END,"
        " updated_at = ? WHERE serial = ? AND state = 'active'",
        (max_failures, now, serial),
    )


def clear_failures(tx: Tx, serial: str, now: float) -> None:
    tx.execute(
        "UPDATE security_cards SET failures = 0, updated_at = ?"
        " WHERE serial = ? AND state = 'active' AND failures <> 0",
        (now, serial),
    )


def record_print(tx: Tx, serial: str, state: str, printed: bool, now: float) -> None:
    tx.execute(
        "UPDATE security_cards SET print_count = print_count + ?, last_print_state = ?,"
        " updated_at = ? WHERE serial = ?",
        (1 if printed else 0, state, now, serial),
    )


# --- challenges ----------------------------------------------------------------------------


def _positions(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(",")) if text else ()


def _positions_text(positions: tuple[int, ...]) -> str:
    return ",".join(str(p) for p in positions)


def insert_challenge(tx: Tx, challenge: Challenge, institution: str) -> None:
    tx.execute(
        "INSERT INTO security_card_challenges (id, serial, institution, first_number,"
        " first_positions, second_number, second_positions, issued_at, expires_at, used_at,"
        " outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, '')",
        (
            challenge.id,
            challenge.serial,
            institution,
            challenge.first.number,
            _positions_text(challenge.first.positions),
            challenge.second.number,
            _positions_text(challenge.second.positions),
            challenge.issued_at,
            challenge.expires_at,
        ),
    )


def get_challenge(tx: Tx, challenge_id: str) -> ChallengeRow | None:
    row = tx.one(
        "SELECT id, serial, institution, first_number, first_positions, second_number,"
        " second_positions, issued_at, expires_at, used_at, outcome"
        " FROM security_card_challenges WHERE id = ?",
        (challenge_id,),
    )
    if row is None:
        return None
    challenge = Challenge(
        id=str(row[0]),
        serial=str(row[1]),
        first=DigitRequest(int(row[3]), _positions(str(row[4]))),
        second=DigitRequest(int(row[5]), _positions(str(row[6]))),
        issued_at=float(row[7]),
        expires_at=float(row[8]),
    )
    used = None if row[9] is None else float(row[9])
    return ChallengeRow(challenge, str(row[2]), used, str(row[10]))


def consume_challenge(tx: Tx, challenge_id: str, now: float) -> bool:
    """Mark the challenge used; False when it was used already (by this or a racing call)."""
    # RETURNING rather than the row count: it also answers in PostgreSQL pipeline mode
    return (
        tx.one(
            "UPDATE security_card_challenges SET used_at = ? WHERE id = ? AND used_at IS NULL"
            " RETURNING id",
            (now, challenge_id),
        )
        is not None
    )


def set_challenge_outcome(tx: Tx, challenge_id: str, outcome: str) -> None:
    tx.execute(
        "UPDATE security_card_challenges SET outcome = ? WHERE id = ?", (outcome, challenge_id)
    )


def keep_latest_challenges(tx: Tx, serial: str, newest: str, keep: int) -> int:
    """Delete the card's challenges but ``newest`` and the ``keep - 1`` most recent others;
    returns how many went. Callers hold the card's row lock, so the bound is exact across
    nodes."""
    return tx.execute(
        "DELETE FROM security_card_challenges WHERE serial = ? AND id <> ? AND id NOT IN ("
        "SELECT id FROM security_card_challenges WHERE serial = ? AND id <> ?"
        " ORDER BY issued_at DESC, id DESC LIMIT ?)",
        (serial, newest, serial, newest, keep - 1),
    )


def count_challenges(tx: Tx, serial: str) -> int:
    row = tx.one("SELECT COUNT(*) FROM security_card_challenges WHERE serial = ?", (serial,))
    return int(row[0]) if row is not None else 0


def prune_challenges(tx: Tx, before: float) -> int:
    return tx.execute("DELETE FROM security_card_challenges WHERE expires_at < ?", (before,))
