"""Tests of devsupport."""
