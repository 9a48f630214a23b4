"""The cross-institution OTP center (DOMAIN.md §2–3)."""
