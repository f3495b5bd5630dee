"""Tests of services.worker."""
