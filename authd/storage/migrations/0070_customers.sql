-- Every registration of a medium at an institution names that institution's own customer
-- reference (issue 10). Registrations made before have none ('') until a branch assigns it
-- (CustomerService.AssignCustomer).
ALTER TABLE otp_registrations ADD COLUMN customer_id TEXT NOT NULL DEFAULT '';
CREATE INDEX otp_registrations_customer ON otp_registrations (institution, customer_id);
CREATE INDEX token_registrations_customer ON token_registrations (institution, customer_id);
