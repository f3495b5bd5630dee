"""What the client retries, and how: gRPC's own retries, configured per method on the channel.

Retried on UNAVAILABLE (RESOURCE_EXHAUSTED is the caller's: `ClientError.retry_after` says how
long the server asks it to wait):
- reads: `GetJob`, `ListJobs`, and `WatchJob` until its first event (gRPC never retries a
  stream that has delivered one; `SayItClient.watch` re-attaches with `after_sequence`);
- `CreateJob`: the client always sends an idempotency key (one per logical call, generated when
  the caller gives none), so a repeat returns the job the first attempt created;
- health checks.

Never retried: `Transcribe`, `TranscribeWithProgress` (a repeat could transcribe, and charge,
the audio twice), `StreamingRecognize` (the live audio it sent is spent) and `CancelJob` (a
repeat of a cancel that worked answers FAILED_PRECONDITION). These wait (up to
`connect_timeout`) for a connection before they are sent, so a gateway that is restarting
costs a wait rather than an error; once sent, an UNAVAILABLE is the caller's to handle
(`ClientError.retry_after` carries the server's hint).

gRPC waits a random time up to `initialBackoff × multiplier^(attempt-1)` (capped at
`maxBackoff`) between attempts, or exactly the server's hint when it sends one
(`grpc-retry-pushback-ms`, which SayIt sends alongside google.rpc.RetryInfo; "-1" = do not
retry). `retryThrottling` keeps a failing mesh from being hammered: every failed attempt costs a
token, every success gives back `token_ratio`, and no retry is made while half the tokens are
gone, so a mesh that keeps failing sees each call once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

SPEECH_SERVICE = "sayit.speech.v1.SpeechService"
HEALTH_SERVICE = "grpc.health.v1.Health"
RETRIED_METHODS = ("GetJob", "ListJobs", "WatchJob", "CreateJob")
NEVER_RETRIED_METHODS = ("Transcribe", "TranscribeWithProgress", "StreamingRecognize", "CancelJob")


@dataclass(frozen=True)
class RetryPolicy:
    # gRPC caps attempts at 5 (the first call included).
    max_attempts: int = 5
    initial_backoff_seconds: float = 0.5
    max_backoff_seconds: float = 10.0
    backoff_multiplier: float = 2.0
    # retryThrottling: retries stop while fewer than max_tokens / 2 are left.
    max_tokens: int = 10
    token_ratio: float = 0.1


def service_config(policy: RetryPolicy) -> dict[str, object]:
    """The channel's service config: retries for the safe methods, throttled per channel."""
    names: list[dict[str, str]] = [
        {"service": SPEECH_SERVICE, "method": method} for method in RETRIED_METHODS
    ]
    names.append({"service": HEALTH_SERVICE})
    return {
        "methodConfig": [
            {
                "name": names,
                "retryPolicy": {
                    "maxAttempts": policy.max_attempts,
                    "initialBackoff": f"{policy.initial_backoff_seconds}s",
                    "maxBackoff": f"{policy.max_backoff_seconds}s",
                    "backoffMultiplier": policy.backoff_multiplier,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
        "retryThrottling": {"maxTokens": policy.max_tokens, "tokenRatio": policy.token_ratio},
    }


def service_config_json(policy: RetryPolicy) -> str:
    return json.dumps(service_config(policy))
