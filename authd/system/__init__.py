"""Facts about the daemon and its caller; the audit trail."""
