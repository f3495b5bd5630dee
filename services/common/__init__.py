"""Shared by every SayIt service: config, logging, errors, interceptors, server and channels."""
