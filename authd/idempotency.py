"""Idempotency keys: a change a branch node sends to the center takes effect once, however
often the link sends it.

A branch node names each change it sends with a key of its own (metadata
``x-authd-idempotency-key``), made once per operation and sent again with every retry at
another center node. The center writes the key, with a digest of the request, in the first
write transaction of the change itself (the store's ``WRITE_HOOK``): the change and its key
commit together or not at all. Once the call has its answer (the reply, or the error it ended
with), the answer is stored under the key before it is sent. Then:

- the same key with the same request gets the stored answer, and nothing is done again;
- the same key with another request is refused (FAILED_PRECONDITION,
  ``IDEMPOTENCY_KEY_REUSED``);
- a key whose change committed while its answer is not stored yet (the call still runs, or
  its node died between the commit and storing the answer) is refused as well
  (FAILED_PRECONDITION, ``IDEMPOTENCY_ANSWER_PENDING``): the change took effect once, and the
  caller reads its state instead of guessing;
- a call that committed nothing stores nothing: a retry does it again, which is safe.

Keys are the institution's own (the row's id is derived from the caller's institution and the
key), kept ``[server] idempotency_seconds``. The request's digest and the answer (which may
hold a generated seed) are sealed under the key-encryption key.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import grpc
from google.rpc import status_pb2

from authd import errors
from authd.secrets import SecretBox
from authd.storage.database import WRITE_HOOK, Database, Tx
from devices import errors as E

log = logging.getLogger("authd.idempotency")

METADATA_KEY = "x-authd-idempotency-key"
KEY_MAX = 128
_KEY = re.compile(rf"[A-Za-z0-9._:-]{{1,{KEY_MAX}}}")
PRUNE_EVERY = 60.0  # seconds between deletions of expired keys (per process)
_REPLY, _REFUSAL = b"R", b"S"


def row_id(institution: str, key: str) -> str:
    """The key's row: institutions never share one, whatever keys they choose."""
    return hashlib.sha256(f"{institution}\0{key}".encode()).hexdigest()


def request_aad(row: str) -> bytes:
    return b"authd idempotency request\0" + row.encode()


def answer_aad(row: str) -> bytes:
    return b"authd idempotency answer\0" + row.encode()


def check_key(key: str, field: str = METADATA_KEY) -> str:
    """``key`` when it is a well-formed idempotency key; BadRequest naming ``field`` if not."""
    if not _KEY.fullmatch(key):
        raise E.BadRequest(f"the idempotency key ({field}) must be 1 to {KEY_MAX} "
                           f"letters, digits and . _ : -", field=field,
                           reason="BAD_IDEMPOTENCY_KEY")
    return key


def seal_request(secrets: SecretBox, row: str, digest: bytes) -> bytes:
    """A key's request digest as its row holds it (also the verification keys',
    ``authd/otp/keys.py``: this module owns the table's sealed columns)."""
    return secrets.seal(digest, request_aad(row))


def seal_answer(secrets: SecretBox, row: str, answer: bytes) -> bytes:
    return secrets.seal(answer, answer_aad(row))


def open_request(secrets: SecretBox, row: str, sealed: bytes) -> bytes:
    return secrets.open(sealed, request_aad(row))


def open_answer(secrets: SecretBox, row: str, sealed: bytes) -> bytes:
    return secrets.open(sealed, answer_aad(row))


def key_of(metadata: Iterable[tuple[str, Any]] | None) -> str | None:
    """The idempotency key a call names, checked (None when it names none)."""
    for name, value in metadata or ():
        if name != METADATA_KEY:
            continue
        return check_key(value.decode(errors="replace") if isinstance(value, bytes)
                         else str(value))
    return None


class StoredRefusal(Exception):
    """The error a call with this key answered first, to be answered again as it was."""

    def __init__(self, status: status_pb2.Status) -> None:
        super().__init__(status.message)
        self.status = status


class _Pending:
    """One keyed call in progress: its write transactions carry the key's row."""

    def __init__(self, keys: IdempotencyKeys, row: str, institution: str, method: str,
                 digest: bytes) -> None:
        self.keys, self.row, self.institution, self.method = keys, row, institution, method
        self.digest = digest
        self.made = False  # a write transaction with the key's row committed

    def begin(self, tx: Tx) -> None:
        if not self.made:
            self.keys.mark(tx, self)

    def committed(self) -> None:
        if not self.made:
            self.made = True
            self.keys.crash_at(self.method, "committed")


class IdempotencyKeys:
    """The center's record of keyed changes (table ``idempotency_keys``)."""

    def __init__(self, db: Database, secrets: SecretBox, keep_seconds: float,
                 crash_points: Iterable[str] = ()) -> None:
        self.db, self.secrets, self.keep = db, secrets, keep_seconds
        self.crash_points = frozenset(crash_points)
        self._pruned = 0.0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the store

    def mark(self, tx: Tx, pending: _Pending) -> None:
        """Write the key's row in the change's transaction; refused when the key is taken."""
        now = time.time()
        tx.execute("DELETE FROM idempotency_keys WHERE id = ? AND created_at < ?",
                   (pending.row, now - self.keep))
        sealed = self.secrets.seal(pending.digest, request_aad(pending.row))
        made = tx.one("INSERT INTO idempotency_keys (id, institution, method, sealed_request, "
                      "created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING "
                      "RETURNING id",
                      (pending.row, pending.institution, pending.method, sealed, now))
        if made is None:
            raise E.WrongState("a change with this idempotency key is being made at the "
                               "center or was just made: ask again for its answer",
                               reason="IDEMPOTENCY_KEY_IN_USE")

    def _look(self, row: str) -> tuple[str, bytes, bytes | None] | None:
        found = self.db.run(lambda tx: tx.one(
            "SELECT method, sealed_request, sealed_answer FROM idempotency_keys "
            "WHERE id = ? AND created_at >= ?", (row, time.time() - self.keep)), write=False)
        if found is None:
            return None
        method, request, answer = found
        return (str(method), self.secrets.open(bytes(request), request_aad(row)),
                None if answer is None else self.secrets.open(bytes(answer), answer_aad(row)))

    def _store(self, pending: _Pending, answer: bytes) -> None:
        sealed = self.secrets.seal(answer, answer_aad(pending.row))
        now = time.time()
        with self._lock:
            prune = now - self._pruned >= PRUNE_EVERY
            if prune:
                self._pruned = now

        def store(tx: Tx) -> None:
            tx.execute("UPDATE idempotency_keys SET sealed_answer = ? WHERE id = ?",
                       (sealed, pending.row))
            if prune:
                tx.execute("DELETE FROM idempotency_keys WHERE created_at < ?",
                           (now - self.keep,))

        self.db.run(store)

    def crash_at(self, method: str, point: str) -> None:
        """The test seam of a node that dies there (``[server] crash_points``)."""
        if f"{method}/{point}" in self.crash_points:
            log.warning("crash point %s/%s: the node ends now", method, point)
            os.kill(os.getpid(), signal.SIGKILL)

    # ------------------------------------------------------------------ one call

    async def call(self, *, institution: str, method: str, key: str, raw: bytes,
                   run: Callable[[], Awaitable[Any]], serialize: Callable[[Any], bytes],
                   run_store: Callable[..., Awaitable[Any]]) -> Any:
        """Run the call ``run`` under ``key``: its answer (serialized bytes, or
        :class:`StoredRefusal`) is the first answer of the key when it has one."""
        row = row_id(institution, key)
        digest = hashlib.sha256(method.encode() + b"\0" + raw).digest()
        found = await run_store(self._look, row)
        if found is not None:
            first_method, first_digest, answer = found
            if first_method != method or first_digest != digest:
                raise E.WrongState(f"this idempotency key named another request ("
                                   f"{first_method}): a new change needs a new key",
                                   reason="IDEMPOTENCY_KEY_REUSED")
            if answer is None:
                raise E.WrongState("the change with this idempotency key took effect at the "
                                   "center, and its answer is not recorded (its call still "
                                   "runs, or the node that made it ended before answering): "
                                   "read its state instead of trying again",
                                   reason="IDEMPOTENCY_ANSWER_PENDING")
            log.info("answered %s again from its idempotency key", method)
            if answer[:1] == _REPLY:
                return answer[1:]
            raise StoredRefusal(status_pb2.Status.FromString(answer[1:]))
        pending = _Pending(self, row, institution, method, digest)
        token = WRITE_HOOK.set(pending)
        try:
            reply = await run()
        except grpc.aio.AbortError:
            raise  # aborted by the handler itself: its status is not known here
        except Exception as exc:
            if pending.made:
                status = errors.status_proto(exc, method)
                await run_store(self._store, pending, _REFUSAL + status.SerializeToString())
                self.crash_at(method, "stored")
            raise
        finally:
            WRITE_HOOK.reset(token)
        if not pending.made:
            return reply
        body = serialize(reply)
        await run_store(self._store, pending, _REPLY + body)
        self.crash_at(method, "stored")
        return body
