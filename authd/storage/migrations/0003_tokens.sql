-- HSM security tokens registered at a branch (DOMAIN.md §5: a transfer with a token registered
-- at a branch needs no additional authentication). One active registration per institution and
-- token; ended registrations stay for the record.
CREATE TABLE token_registrations (
    id TEXT PRIMARY KEY,
    institution TEXT NOT NULL,
    token_serial TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    terminal TEXT NOT NULL,
    operator TEXT NOT NULL,
    registered_at DOUBLE PRECISION NOT NULL,
    deregistered_at DOUBLE PRECISION,
    active INTEGER NOT NULL
);
CREATE UNIQUE INDEX token_registrations_active ON token_registrations (institution, token_serial)
    WHERE active = 1;
CREATE INDEX token_registrations_serial ON token_registrations (token_serial);

-- Consecutive wrong user PINs per token, counted by the daemon (DOMAIN.md §2: 3 wrong entries
-- of a certificate password restrict the service) on top of the token's own counter.
CREATE TABLE token_pin_failures (
    token_serial TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
