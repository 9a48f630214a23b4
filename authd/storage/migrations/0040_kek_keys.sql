-- The key-encryption keys this store's sealed data depends on (docs/keys.md). Key 1 is the one
-- configured in [kek]; `authd kek rotate` adds the next. A sealed value names its key in its
-- header, so a read finds its key while a rotation moves records from one key to the next.
-- state: 'new' (being created on the token), 'active' (new seals), 'retiring' (still opens
-- records not yet moved), 'destroyed' (gone from the token; nothing is sealed under it).
CREATE TABLE kek_keys (
    id INTEGER PRIMARY KEY,
    key_label TEXT NOT NULL,
    state TEXT NOT NULL,
    sealed_data_key BLOB,               -- data-key mode: this key's data key, sealed under it
    created_at DOUBLE PRECISION NOT NULL,
    destroyed_at DOUBLE PRECISION
);
-- One row per rotation; the one not 'done' is resumed by the next `authd kek rotate`.
-- state: 'creating' -> 'rewrapping' -> 'destroying' -> 'done'.
CREATE TABLE kek_rotations (
    id INTEGER PRIMARY KEY,
    from_key INTEGER NOT NULL,
    to_key INTEGER NOT NULL,
    state TEXT NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    activated_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    moved BIGINT NOT NULL DEFAULT 0
);
