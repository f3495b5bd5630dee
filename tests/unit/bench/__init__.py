"""Tests of bench: scoring, normalising, reports."""
