-- How the daemon recognises a token's initialization, recorded when it first counts a wrong
-- PIN of the token: its label then, and the value of the public data object it put on the
-- token (NULL when the token took none). Re-initializing a token under the same serial
-- destroys that object (and may change the label): the counts of the old initialization are
-- then cleared instead of carried over.
CREATE TABLE token_initializations (
    token_serial TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    marker TEXT,
    recorded_at DOUBLE PRECISION NOT NULL
);
