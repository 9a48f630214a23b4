-- Transfer authorisation (issue 11): customers' profiles at an institution, daily totals,
-- decisions (the idempotency record and the transaction record), designated terminals,
-- identity-input counters, the shared incident list of device information.

-- One row per customer and institution: the electronic-finance agreement, its exemptions and
-- the customer's own limits. Every decision locks this row first, so a customer's decisions
-- are serialised across threads, processes and nodes.
CREATE TABLE policy_customers (
    institution TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    kind TEXT NOT NULL,                       -- personal | corporate
    agreed_at DOUBLE PRECISION NOT NULL,      -- the electronic-finance agreement
    registered_at DOUBLE PRECISION NOT NULL,  -- internet banking registered; 0: not yet
    last_used_at DOUBLE PRECISION NOT NULL,   -- last approved transfer; 0: never
    lifted_at DOUBLE PRECISION NOT NULL,      -- last lift of an inactivity suspension; 0: never
    special_agreement INTEGER NOT NULL,
    sms_result_notice INTEGER NOT NULL,
    overseas_departure INTEGER NOT NULL,
    per_transfer_limit BIGINT NOT NULL,       -- the customer's own limits; 0: the ceiling
    daily_limit BIGINT NOT NULL,
    contract_ref TEXT NOT NULL,               -- a recorded contract above a grade's maximum
    contract_grade TEXT NOT NULL,
    contract_per_transfer BIGINT NOT NULL,
    contract_daily BIGINT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (institution, customer_id)
);

-- KRW counted per customer and Korean calendar day (YYYY-MM-DD).
CREATE TABLE policy_daily_totals (
    institution TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    day TEXT NOT NULL,
    used BIGINT NOT NULL,
    PRIMARY KEY (institution, customer_id, day)
);

CREATE TABLE policy_decisions (
    id TEXT PRIMARY KEY,
    institution TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    outcome TEXT NOT NULL,
    amount BIGINT NOT NULL,
    consumed BIGINT NOT NULL,                 -- counted on the day's total (0 unless approved)
    day TEXT NOT NULL,
    released_at DOUBLE PRECISION,             -- the backend reported the transfer not executed
    decision TEXT NOT NULL,                   -- the decision as answered (JSON)
    device TEXT NOT NULL,                     -- the terminal's device information (JSON)
    decided_at DOUBLE PRECISION NOT NULL,
    keep_until DOUBLE PRECISION NOT NULL
);
CREATE UNIQUE INDEX policy_decisions_key ON policy_decisions (institution, idempotency_key);
CREATE INDEX policy_decisions_order ON policy_decisions (institution, customer_id, fingerprint,
                                                         decided_at);
CREATE INDEX policy_decisions_customer ON policy_decisions (institution, customer_id,
                                                            decided_at);
CREATE INDEX policy_decisions_keep ON policy_decisions (keep_until);

-- Designated terminals (EFT art. 2(1)16).
CREATE TABLE policy_terminals (
    id TEXT PRIMARY KEY,
    institution TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    label TEXT NOT NULL,
    device TEXT NOT NULL,                     -- normalised device information (JSON)
    channel TEXT NOT NULL,                    -- branch | online
    registered_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX policy_terminals_customer ON policy_terminals (institution, customer_id);

-- Consecutive wrong identity inputs reported by the backend (IB art. 11).
CREATE TABLE policy_input_counters (
    institution TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    failures INTEGER NOT NULL,
    restricted INTEGER NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (institution, customer_id, kind)
);

-- Device information where an incident happened (CA art. 2(1)6, 6(4)4), fed by every
-- institution and refused everywhere. One live entry per identifier.
CREATE TABLE policy_incidents (
    id TEXT PRIMARY KEY,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    reported_by TEXT NOT NULL,
    reason TEXT NOT NULL,
    reported_at DOUBLE PRECISION NOT NULL,
    withdrawn_at DOUBLE PRECISION
);
CREATE UNIQUE INDEX policy_incidents_live ON policy_incidents (field, value)
    WHERE withdrawn_at IS NULL;

-- Which OTP device, token or smartcard key a customer uses at an institution, until every
-- registration of a medium names the institution's customer (issue 10).
CREATE TABLE policy_media_links (
    institution TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    medium TEXT NOT NULL,                     -- otp | token | smartcard
    serial TEXT NOT NULL,
    public_key BLOB NOT NULL,                 -- token, smartcard: DER SubjectPublicKeyInfo
    linked_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (institution, customer_id, medium, serial)
);
