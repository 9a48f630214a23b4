-- A rotated-out key-encryption key is kept on the token as 'retired' until the backups taken
-- before the rotation have expired ([kek] keep_rotated_days, docs/keys.md): nothing in the live
-- store is sealed under it, but a restored backup is re-sealed with it. retired_at is when the
-- rotation that moved every value off it finished.
ALTER TABLE kek_keys ADD COLUMN retired_at DOUBLE PRECISION;
