"""Domain logic per authentication medium: no gRPC, no storage, no driver libraries."""
