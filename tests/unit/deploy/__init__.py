"""Tests of deploy/: manifests, Dockerfile and dashboard against the code."""
