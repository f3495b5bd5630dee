"""The `sayit` command line client."""
