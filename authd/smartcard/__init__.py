"""Smartcards in PC/SC readers: readers, card events, PIV, raw APDUs."""
