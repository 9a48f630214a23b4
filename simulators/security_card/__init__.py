"""An embosser and a virtual blind cardholder for braille security cards."""
