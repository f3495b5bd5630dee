"""Tests of services.transcriber."""
