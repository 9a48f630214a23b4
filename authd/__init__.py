"""authd: the daemon that wires devices, drivers, storage and the gRPC API together."""

__version__ = "0.1.0"
