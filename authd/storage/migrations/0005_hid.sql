-- USB HID OTP devices provisioned at a branch (issue 5). The OTP seed itself lives in the OTP
-- center; here: which device became which OTP serial, and its sealed identification key.
CREATE TABLE hid_devices (
    device_serial BIGINT PRIMARY KEY,
    otp_serial TEXT NOT NULL UNIQUE,
    institution TEXT NOT NULL,
    firmware TEXT NOT NULL,
    digits INTEGER NOT NULL,
    ident_key BLOB,
    provisioned_at DOUBLE PRECISION NOT NULL,
    provisioned_by TEXT NOT NULL
);

-- Sealed keys of the HID area (the key deriving each device's slot access code).
CREATE TABLE hid_keys (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
