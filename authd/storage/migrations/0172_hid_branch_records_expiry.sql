-- A branch node's copy of the center's HID answers is used for [hid_otp] branch_copy_max_age
-- seconds only. An answer older than that is purged: its record is erased and only the mark
-- that one was kept, and when the center gave it, stays (expired_at set), so that the device
-- is then told apart from one the center never answered for on this node. The mark holds no
-- record; the next answer of the center replaces it.
ALTER TABLE hid_branch_records ADD COLUMN expired_at DOUBLE PRECISION;
