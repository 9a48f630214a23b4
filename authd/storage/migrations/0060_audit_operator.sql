-- The teller a branch node acted for, beside the terminal (subject) that called the center.
ALTER TABLE audit_log ADD COLUMN operator TEXT NOT NULL DEFAULT '';
