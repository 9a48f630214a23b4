-- Idempotency keys of changes a branch node sends to the center (authd/idempotency.py). The
-- row is written in the change's own transaction, so a change and its key commit together or
-- not at all; the answer follows. id is derived from the institution and the key: institutions
-- never share keys. The request's digest and the answer are sealed under the KEK.
CREATE TABLE idempotency_keys (
    id TEXT PRIMARY KEY,
    institution TEXT NOT NULL,
    method TEXT NOT NULL,
    sealed_request BLOB NOT NULL,
    sealed_answer BLOB,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
