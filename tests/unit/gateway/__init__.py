"""Tests of services.gateway."""
