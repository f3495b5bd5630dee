"""End-to-end: the `sayit` CLI, the Python client, metrics and logs against a real mesh."""
