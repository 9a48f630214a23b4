"""A certificate authority standing in for a licensed CA."""
