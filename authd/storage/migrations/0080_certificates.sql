-- Certificates (DOMAIN.md §6): issuance requests, the certificates an institution issued as
-- registration authority or registered from another bank, and one-time numbers registered at
-- a branch for additional authentication. (The incident list of device information is the
-- shared one of 0090_policy.sql.)

-- An issuance (or reissue) request: the five steps, cancelled when not completed within
-- 7 days of the application (CA art. 6(3)). The CA's authorization code is sealed.
CREATE TABLE certificate_requests (
    id TEXT PRIMARY KEY,
    institution TEXT NOT NULL,
    customer_ref TEXT NOT NULL,
    certificate_type TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    step INTEGER NOT NULL,
    subscriber_name TEXT NOT NULL,
    replaces_serial TEXT NOT NULL,
    ca_reference TEXT NOT NULL,
    ca_code BLOB,
    storage TEXT NOT NULL,
    certificate_serial TEXT NOT NULL,
    reason TEXT NOT NULL,
    operator TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX certificate_requests_customer ON certificate_requests (institution, customer_ref);
CREATE INDEX certificate_requests_open ON certificate_requests (state, expires_at);

-- A certificate as one institution knows it: issued through it (origin 'issued') or another
-- bank's certificate registered at it (origin 'registered'). Serials are hexadecimal.
CREATE TABLE certificates (
    institution TEXT NOT NULL,
    issuer TEXT NOT NULL,
    serial TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    customer_ref TEXT NOT NULL,
    certificate_type TEXT NOT NULL,
    origin TEXT NOT NULL,
    storage TEXT NOT NULL,
    location TEXT NOT NULL,
    subject TEXT NOT NULL,
    not_before DOUBLE PRECISION NOT NULL,
    not_after DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL,
    status_reason TEXT NOT NULL,
    status_at DOUBLE PRECISION,
    issued_at DOUBLE PRECISION NOT NULL,
    request_id TEXT NOT NULL,
    fee_krw INTEGER NOT NULL,
    refund_krw INTEGER,
    refunded_at DOUBLE PRECISION,
    replaced_by TEXT NOT NULL,
    der BLOB NOT NULL,
    PRIMARY KEY (institution, issuer, serial)
);
CREATE UNIQUE INDEX certificates_fingerprint ON certificates (institution, fingerprint);
CREATE INDEX certificates_expiry ON certificates (institution, not_after);
CREATE INDEX certificates_customer ON certificates (institution, customer_ref);

-- One-time numbers registered at a branch (additional authentication, FAQ): sealed, one live
-- number per customer and institution, void after 3 wrong entries or once used.
CREATE TABLE certificate_one_time_numbers (
    id TEXT PRIMARY KEY,
    institution TEXT NOT NULL,
    customer_ref TEXT NOT NULL,
    sealed BLOB NOT NULL,
    failures INTEGER NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    used_at DOUBLE PRECISION,
    operator TEXT NOT NULL,
    active INTEGER NOT NULL
);
CREATE UNIQUE INDEX certificate_one_time_numbers_live
    ON certificate_one_time_numbers (institution, customer_ref) WHERE active = 1;
