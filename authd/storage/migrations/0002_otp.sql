-- OTP generators, registered at many institutions, with one consecutive-failure counter.
CREATE TABLE otp_devices (
    serial TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    digits INTEGER NOT NULL,
    period INTEGER NOT NULL,
    algorithm TEXT NOT NULL,
    seed BLOB NOT NULL,                 -- sealed under the key-encryption key
    last_counter BIGINT NOT NULL,       -- HOTP: last accepted counter; TOTP: last accepted step
    drift INTEGER NOT NULL,             -- TOTP: device clock offset in steps (resync)
    state TEXT NOT NULL,
    failures INTEGER NOT NULL,          -- consecutive, summed over all institutions
    issuer TEXT NOT NULL,
    replaced_by TEXT,
    warranty_until DOUBLE PRECISION NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE otp_registrations (
    serial TEXT NOT NULL REFERENCES otp_devices (serial),
    institution TEXT NOT NULL,
    channel TEXT NOT NULL,
    registered_at DOUBLE PRECISION NOT NULL,
    failures_here INTEGER NOT NULL,
    PRIMARY KEY (serial, institution)
);
CREATE INDEX otp_registrations_institution ON otp_registrations (institution);
