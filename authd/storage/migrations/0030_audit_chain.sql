-- The audit trail keyed by a sequence (docs/audit.md). A record names who did what (institution,
-- role, subject, action, outcome) by one small code into audit_kinds, which grows by one row
-- per new combination. Records carry no retention value: their class is sealed in the chain
-- and the configuration says how long each class is kept.
CREATE TABLE audit_kinds (
    code INTEGER PRIMARY KEY AUTOINCREMENT,
    institution TEXT NOT NULL,
    role TEXT NOT NULL,
    subject TEXT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    UNIQUE (institution, role, subject, action, outcome)
);
INSERT INTO audit_kinds (institution, role, subject, action, outcome)
    SELECT DISTINCT institution, role, subject, action, outcome FROM audit_log;
CREATE TABLE audit_log_v2 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_us BIGINT NOT NULL,             -- microseconds since the epoch
    kind INTEGER NOT NULL,             -- audit_kinds.code
    target TEXT NOT NULL,
    detail TEXT NOT NULL,
    customer TEXT                      -- the institution's customer reference, where known
);
INSERT INTO audit_log_v2 (at_us, kind, target, detail)
    SELECT CAST(a.at * 1000000 AS BIGINT), k.code, a.target, a.detail FROM audit_log a
    JOIN audit_kinds k ON k.institution = a.institution AND k.role = a.role
        AND k.subject = a.subject AND k.action = a.action AND k.outcome = a.outcome
    ORDER BY a.at, a.id;
DROP TABLE audit_log;
ALTER TABLE audit_log_v2 RENAME TO audit_log;
CREATE INDEX audit_log_target ON audit_log (target);
-- Rows without a customer reference cost no index entry.
CREATE INDEX audit_log_customer ON audit_log (customer) WHERE customer IS NOT NULL;
-- The records with their names, for reading by hand (operators' SQL, tests).
CREATE VIEW audit_records AS
    SELECT a.id, a.at_us / 1000000.0 AS at, k.institution, k.role, k.subject, k.action,
           a.target, k.outcome, a.detail, a.customer
    FROM audit_log a JOIN audit_kinds k ON k.code = a.kind;

-- The hash chain: block N seals the records with first_id <= id <= last_id (ids absent from its
-- body were never committed). hash = H(header, body_digest, prev_hash); every block is signed.
-- body: record ids, retention classes and 128-bit record hashes; NULL once all were pruned.
CREATE TABLE audit_blocks (
    seq BIGINT PRIMARY KEY,
    first_id BIGINT NOT NULL,
    last_id BIGINT NOT NULL,
    record_count INTEGER NOT NULL,
    at_min DOUBLE PRECISION NOT NULL,
    at_max DOUBLE PRECISION NOT NULL,
    at_hi DOUBLE PRECISION NOT NULL,   -- the largest record time in this block or any before
    sealed_at DOUBLE PRECISION NOT NULL,
    body BLOB,
    body_digest BLOB NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL,
    key_id TEXT NOT NULL,
    signature BLOB NOT NULL
);
CREATE INDEX audit_blocks_at_hi ON audit_blocks (at_hi);

-- Signed statements of pruning: in blocks up to through_block, records of class C in a block
-- whose at_max is before cutoffs[C] were deleted; bodies up to compacted_through were dropped.
CREATE TABLE audit_prunes (
    seq BIGINT PRIMARY KEY,
    pruned_at DOUBLE PRECISION NOT NULL,
    through_block BIGINT NOT NULL,
    compacted_through BIGINT NOT NULL,
    cutoffs TEXT NOT NULL,
    removed BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    signature BLOB NOT NULL
);
