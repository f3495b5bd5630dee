"""Tests that the README and docs/ stay in step with the code."""
