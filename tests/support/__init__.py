"""Helpers only tests use: calling the API, bad inputs, TLS certificates, a fake transcriber."""
