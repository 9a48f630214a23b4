-- HID OTP provisioning across the branch → center link: the center reserves the enrollment
-- (seed and identification key sealed, with an expiry), the branch programs the device, the
-- center confirms. A settled reservation keeps no secret (sealed_* are emptied) and stays a day
-- so that a repeated confirmation gets the same answer.
CREATE TABLE hid_reservations (
    id TEXT PRIMARY KEY,
    device_serial BIGINT NOT NULL,
    otp_serial TEXT NOT NULL,
    institution TEXT NOT NULL,
    terminal TEXT NOT NULL,
    operator TEXT NOT NULL,
    digits INTEGER NOT NULL,
    firmware TEXT NOT NULL,
    sealed_seed BLOB,
    sealed_ident_key BLOB,
    identification INTEGER NOT NULL,
    state TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    settled_at DOUBLE PRECISION
);
-- At most one pending reservation per device.
CREATE UNIQUE INDEX hid_reservations_pending ON hid_reservations (device_serial)
    WHERE state = 'pending';
CREATE INDEX hid_reservations_expiry ON hid_reservations (state, expires_at);
