"""Tests of services.client."""
