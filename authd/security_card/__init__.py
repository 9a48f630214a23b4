"""Security cards and braille security cards: issue, print/emboss, challenge, verify."""
