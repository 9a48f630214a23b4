"""Idempotency keys of backends' verifications: a verification sent again with its key gets
the first answer, and nothing is counted again.

A backend names a verification with a key of its own (``VerifyRequest.idempotency_key``, or a
unary Verify's ``x-authd-idempotency-key`` metadata), made once and sent again with every retry.
The key lives in the table of the center's keys (``idempotency_keys``, ``authd/idempotency.py``),
under the method ``OtpService.Verify`` whichever call carried it (Verify, VerifyBatch,
VerifyStream, the native front end's link), with its row id derived from the caller's
institution and the key: institutions never share one.

Unlike a center change, a verification's answer is known inside its transaction, so the key,
the request's digest and the answer are written in the SAME transaction as the counters and
the audit, in the engine's batch (``OtpService.verify_many``): a verification and its key commit
together or not at all, and a node killed between the commit and the answer leaves the answer
for the retry. Then:

- the same key with the same request (serial and code; ``request_id`` is only echoed) gets the
  stored answer: same outcome, same counters, nothing counted or audited again;
- the same key with another request is refused (FAILED_PRECONDITION, ``IDEMPOTENCY_KEY_REUSED``);
- a verification that was refused before it was evaluated (a bad request, a code of another
  length, rate limit, busy) stores nothing: a retry is evaluated, which is safe.

Two retries of one key at once are evaluated once: one device's verifications are serialised
under its row lock, and the key is read after that lock is held; two keyed verifications of one
batch sharing a key are evaluated in turn. Before it is evaluated, a new key's row is inserted
(``ON CONFLICT DO NOTHING``): a transaction holding other devices that inserted the same key
makes the insert wait for its commit and come back empty, and the key is read again; the
answer is added to the row once evaluated, or the row dropped if the verification was refused.
The digest and the answer are sealed under the key-encryption key (the code never reaches the
store in plaintext); keys are kept ``[server] idempotency_seconds``, like the center's.
"""

from __future__ import annotations

import hashlib
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from authd.idempotency import (
    check_key,
    open_answer,
    open_request,
    row_id,
    seal_answer,
    seal_request,
)
from authd.secrets import SecretBox
from authd.storage import Tx
from devices.errors import BadRequest, WrongState
from devices.otp.rules import Outcome

METHOD = "OtpService.Verify"
PRUNE_EVERY = 60.0  # seconds between deletions of expired keys (per process)
_ANSWER = struct.Struct(">II")  # an answer: failures, attempts left, then the outcome's name
_IN_CHUNK = 500  # ids per IN (...) list or rows per INSERT


@dataclass(frozen=True, slots=True)
class Keyed:
    """A verification's key (its row id) and its request's digest."""

    row: str
    digest: bytes


@dataclass(frozen=True, slots=True)
class Stored:
    """What a key's row holds: the digest of its first request, and its answer."""

    digest: bytes
    outcome: Outcome
    failures: int
    attempts_left: int


CALL_KEY = ("VerifyBatch and VerifyStream name an idempotency key per verification "
            "(VerifyRequest.idempotency_key), not one for the call")
REUSED = ("this idempotency key named another request ({method}): a new verification needs "
          "a new key")


def keyed(institution: str, key: str, serial: str, code: str) -> Keyed:
    return Keyed(row_id(institution, key),
                 hashlib.sha256(f"{METHOD}\0{serial}\0{code}".encode()).digest())


def request_key(field: str, metadata: str | None = None) -> str | None:
    """The key a verification names: its field, or (a unary Verify) the metadata's key
    ``metadata`` (checked already); both may be given only when they are the same. Raises
    BadRequest for a malformed key."""
    if field:
        checked = check_key(field, "idempotency_key")
        if metadata is not None and metadata != checked:
            raise BadRequest("the idempotency key of the request and of the call's metadata "
                             "differ; name one", field="idempotency_key",
                             reason="BAD_IDEMPOTENCY_KEY")
        return checked
    return metadata


def reused(method: str) -> WrongState:
    return WrongState(REUSED.format(method=method), reason="IDEMPOTENCY_KEY_REUSED")


class VerificationKeys:
    """The verifications' rows of ``idempotency_keys``, read and written in the engine's
    transaction."""

    def __init__(self, secrets: SecretBox, keep_seconds: float) -> None:
        self.secrets, self.keep = secrets, keep_seconds
        self._pruned = 0.0
        self._lock = threading.Lock()

    def look(self, tx: Tx, rows: Sequence[str]) -> dict[str, Stored | str]:
        """The live keys among ``rows``: what a verification stored, or the method of another
        call that took the key."""
        found: dict[str, Stored | str] = {}
        since = time.time() - self.keep
        unique = sorted(set(rows))
        for first in range(0, len(unique), _IN_CHUNK):
            chunk = unique[first:first + _IN_CHUNK]
            for row, method, request, answer in tx.all(
                    "SELECT id, method, sealed_request, sealed_answer FROM idempotency_keys "
                    f"WHERE id IN ({', '.join('?' * len(chunk))}) AND created_at >= ?",
                    (*chunk, since)):
                if method != METHOD or answer is None:
                    found[row] = str(method)
                    continue
                digest = open_request(self.secrets, row, bytes(request))
                body = open_answer(self.secrets, row, bytes(answer))
                failures, left = _ANSWER.unpack_from(body)
                outcome = Outcome(body[_ANSWER.size:].decode())
                found[row] = Stored(digest, outcome, failures, left)
        return found

    def claim(self, tx: Tx, keys: Sequence[Keyed], institutions: Sequence[str]) -> set[str]:
        """Take the rows of ``keys`` (with their requests' digests) before their verifications
        are evaluated; returns the rows another transaction holds. On PostgreSQL a row another
        transaction is inserting makes this wait for its commit, so a second look finds it."""
        now = time.time()
        with self._lock:
            prune = now - self._pruned >= PRUNE_EVERY
            if prune:
                self._pruned = now
        if prune:
            tx.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (now - self.keep,))
        else:  # an expired key of the same id gives way to the new one
            tx.executemany("DELETE FROM idempotency_keys WHERE id = ? AND created_at < ?",
                           [(key.row, now - self.keep) for key in keys])
        rows = [(key.row, institution, METHOD,
                 seal_request(self.secrets, key.row, key.digest), now)
                for key, institution in zip(keys, institutions, strict=True)]
        made: set[str] = set()
        for first in range(0, len(rows), _IN_CHUNK):
            chunk = rows[first:first + _IN_CHUNK]
            made.update(str(r[0]) for r in tx.all(
                "INSERT INTO idempotency_keys (id, institution, method, sealed_request, "
                f"created_at) VALUES {', '.join(['(?, ?, ?, ?, ?)'] * len(chunk))} "
                "ON CONFLICT (id) DO NOTHING RETURNING id",
                [value for row in chunk for value in row]))
        return {key.row for key in keys} - made

    def answer(self, tx: Tx, answers: Sequence[tuple[Keyed, Outcome, int, int]],
               refused: Sequence[Keyed]) -> None:
        """The answers of the claimed keys' verifications; the keys of those refused before
        they were evaluated are let go (nothing stored: a retry is evaluated)."""
        if answers:
            tx.executemany("UPDATE idempotency_keys SET sealed_answer = ? WHERE id = ?", [
                (seal_answer(self.secrets, key.row,
                             _ANSWER.pack(failures, left) + outcome.value.encode()), key.row)
                for key, outcome, failures, left in answers])
        if refused:
            tx.executemany("DELETE FROM idempotency_keys WHERE id = ?",
                           [(key.row,) for key in refused])
