"""Unit tests, one directory per package; the scheduler's run in-process on a private Redis."""
