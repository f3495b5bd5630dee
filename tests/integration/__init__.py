"""Integration tests: one real service (or a real Redis) at a time, over real gRPC."""
