"""Shared by every SayIt service: settings, logs, errors, interceptors, server, channels, audio."""
