-- Audit trail of every state change (DOMAIN.md §7: kept 5 years; 1 year for small records).
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL,
    institution TEXT NOT NULL,
    role TEXT NOT NULL,
    subject TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    keep_until DOUBLE PRECISION NOT NULL
);
CREATE INDEX audit_log_target ON audit_log (target, at);
CREATE INDEX audit_log_keep ON audit_log (keep_until);

-- Small key/value facts about this store (wrapped data key, schema facts).
CREATE TABLE store_meta (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
