"""Smartcards: ISO 7816-4 APDUs and the PIV application (NIST SP 800-73-4)."""
