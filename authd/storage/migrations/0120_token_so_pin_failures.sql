-- Consecutive wrong SO PINs per token (UnblockPin), counted by the daemon: SoftHSM2 and many
-- tokens never lock the SO PIN, so without this count a terminal could try SO PINs without end.
CREATE TABLE token_so_pin_failures (
    token_serial TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
