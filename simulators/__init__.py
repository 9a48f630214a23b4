"""Software devices that stand in for hardware at the driver seam or behind the real stack."""
