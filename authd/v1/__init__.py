"""Generated gRPC code for package authd.v1."""
