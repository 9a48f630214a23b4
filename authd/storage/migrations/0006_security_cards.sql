-- Security cards (보안카드) and braille security cards (점자 보안카드).
-- The codes are kept only sealed under the key-encryption key (sealed_codes).
CREATE TABLE security_cards (
    serial TEXT PRIMARY KEY,
    institution TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    medium TEXT NOT NULL,
    layout TEXT NOT NULL,
    state TEXT NOT NULL,
    failures INTEGER NOT NULL,
    code_count INTEGER NOT NULL,
    code_digits INTEGER NOT NULL,
    sealed_codes BLOB NOT NULL,
    replaces TEXT NOT NULL,
    replaced_by TEXT NOT NULL,
    print_count INTEGER NOT NULL,
    last_print_state TEXT NOT NULL,
    issued_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
-- At most one live card per customer and institution.
CREATE UNIQUE INDEX security_cards_live_holder ON security_cards (institution, customer_id)
    WHERE state IN ('active', 'restricted');
CREATE INDEX security_cards_holder ON security_cards (institution, customer_id);

-- Challenges: which digits were asked; single use (used_at), expiring (expires_at).
CREATE TABLE security_card_challenges (
    id TEXT PRIMARY KEY,
    serial TEXT NOT NULL,
    institution TEXT NOT NULL,
    first_number INTEGER NOT NULL,
    first_positions TEXT NOT NULL,
    second_number INTEGER NOT NULL,
    second_positions TEXT NOT NULL,
    issued_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    used_at DOUBLE PRECISION,
    outcome TEXT NOT NULL
);
CREATE INDEX security_card_challenges_expiry ON security_card_challenges (expires_at);
