-- The institution's customer reference of a HID provisioning, kept with its reservation until
-- the confirmation enrolls the device for that customer.
ALTER TABLE hid_reservations ADD COLUMN customer_id TEXT NOT NULL DEFAULT '';
