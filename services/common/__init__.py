"""Shared by every SayIt service: settings, logs, errors, interceptors, call caps, server,
channels, Redis clients, audio."""
