"""Tests of services.jobs."""
