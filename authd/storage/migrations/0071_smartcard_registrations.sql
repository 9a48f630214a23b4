-- Smartcards registered at a branch for an institution's customer, recorded at the center like
-- tokens (token_registrations). One active registration per institution and card; ended
-- registrations stay for the record. card_serial: the GUID of the card's CHUID, in hex.
CREATE TABLE smartcard_registrations (
    id TEXT PRIMARY KEY,
    institution TEXT NOT NULL,
    card_serial TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    terminal TEXT NOT NULL,
    operator TEXT NOT NULL,
    registered_at DOUBLE PRECISION NOT NULL,
    deregistered_at DOUBLE PRECISION,
    active INTEGER NOT NULL
);
CREATE UNIQUE INDEX smartcard_registrations_active
    ON smartcard_registrations (institution, card_serial) WHERE active = 1;
CREATE INDEX smartcard_registrations_serial ON smartcard_registrations (card_serial);
CREATE INDEX smartcard_registrations_customer ON smartcard_registrations (institution, customer_id);
