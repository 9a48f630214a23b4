-- The transfer policy reads a customer's media from the customer model (issue 11): the key a
-- token or smartcard signs transfers with belongs to its branch registration, and the links
-- the policy kept of its own (policy_media_links) go.

-- The DER SubjectPublicKeyInfo of the key the registered medium signs with ('' : none named).
ALTER TABLE token_registrations ADD COLUMN public_key BLOB;
ALTER TABLE smartcard_registrations ADD COLUMN public_key BLOB;

-- A key linked to the customer's active registration moves to that registration.
UPDATE token_registrations SET public_key = (
    SELECT l.public_key FROM policy_media_links l
    WHERE l.institution = token_registrations.institution
      AND l.customer_id = token_registrations.customer_id
      AND l.medium = 'token' AND l.serial = token_registrations.token_serial)
WHERE active = 1 AND EXISTS (
    SELECT 1 FROM policy_media_links l
    WHERE l.institution = token_registrations.institution
      AND l.customer_id = token_registrations.customer_id
      AND l.medium = 'token' AND l.serial = token_registrations.token_serial);
UPDATE smartcard_registrations SET public_key = (
    SELECT l.public_key FROM policy_media_links l
    WHERE l.institution = smartcard_registrations.institution
      AND l.customer_id = smartcard_registrations.customer_id
      AND l.medium = 'smartcard' AND l.serial = smartcard_registrations.card_serial)
WHERE active = 1 AND EXISTS (
    SELECT 1 FROM policy_media_links l
    WHERE l.institution = smartcard_registrations.institution
      AND l.customer_id = smartcard_registrations.customer_id
      AND l.medium = 'smartcard' AND l.serial = smartcard_registrations.card_serial);

-- An OTP registration made before customer references (customer_id '') takes the customer a
-- teller linked it to; one that names its customer keeps it.
UPDATE otp_registrations SET customer_id = (
    SELECT MIN(l.customer_id) FROM policy_media_links l
    WHERE l.institution = otp_registrations.institution AND l.medium = 'otp'
      AND l.serial = otp_registrations.serial)
WHERE customer_id = '' AND EXISTS (
    SELECT 1 FROM policy_media_links l
    WHERE l.institution = otp_registrations.institution AND l.medium = 'otp'
      AND l.serial = otp_registrations.serial);

DROP TABLE policy_media_links;
