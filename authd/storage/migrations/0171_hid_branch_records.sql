-- A branch node's copy of what the center last answered about the HID OTP devices attached
-- here, per institution the node acts for: the provisioning record as that institution may
-- see it, or that there is none (otp_serial NULL), and when the center said so. ListDevices
-- answers from it while the center is unreachable. No secret is kept here.
CREATE TABLE hid_branch_records (
    institution TEXT NOT NULL,
    device_serial BIGINT NOT NULL,
    otp_serial TEXT,
    record_institution TEXT NOT NULL,
    firmware TEXT NOT NULL,
    digits INTEGER NOT NULL,
    identification INTEGER NOT NULL,
    provisioned_at DOUBLE PRECISION NOT NULL,
    checked_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (institution, device_serial)
);
