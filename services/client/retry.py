"""Retrying UNAVAILABLE with backoff, by gRPC itself: a service config on the channel.

gRPC retries a call that failed with a listed status before any response arrived, waiting a
random time up to `initialBackoff × multiplier^(attempt-1)` (capped at `maxBackoff`) between
attempts. A stream that has delivered a response is never retried by gRPC; `SayItClient.watch`
re-attaches such streams from the last sequence it saw.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

SPEECH_SERVICE = "sayit.speech.v1.SpeechService"
HEALTH_SERVICE = "grpc.health.v1.Health"


@dataclass(frozen=True)
class RetryPolicy:
    # gRPC caps attempts at 5 (the first call included).
    max_attempts: int = 5
    initial_backoff_seconds: float = 0.5
    max_backoff_seconds: float = 10.0
    backoff_multiplier: float = 2.0


def service_config(policy: RetryPolicy) -> dict[str, object]:
    """The channel's service config: retry UNAVAILABLE on every SpeechService and Health call."""
    return {
        "methodConfig": [
            {
                "name": [{"service": SPEECH_SERVICE}, {"service": HEALTH_SERVICE}],
                "retryPolicy": {
                    "maxAttempts": policy.max_attempts,
                    "initialBackoff": f"{policy.initial_backoff_seconds}s",
                    "maxBackoff": f"{policy.max_backoff_seconds}s",
                    "backoffMultiplier": policy.backoff_multiplier,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }


def service_config_json(policy: RetryPolicy) -> str:
    return json.dumps(service_config(policy))
