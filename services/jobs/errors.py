"""Redis failures as the errors a caller can act on.

The caller never reads Redis's own text (it names the Redis endpoint): that is logged, with the
request id bound to the call, and the caller is told to retry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis.exceptions

from services.common import logs
from services.common.errors import QuotaViolation, ResourceExhausted, Unavailable
from services.common.redis_client import pool_exhausted

log = logs.get_logger("sayit.jobs")

# Redis restarting or failing over takes seconds; a reload of a large dataset longer.
DOWN_RETRY_SECONDS = 2.0
LOADING_RETRY_SECONDS = 5.0
# How soon a caller may try again when every pooled connection stayed busy for the pool's wait.
BUSY_RETRY_SECONDS = 1.0
# How soon a caller refused by a full job store may try again: queued audio leaves Redis as its
# chunks are transcribed, a few minutes of audio per worker-minute.
STORE_FULL_RETRY_SECONDS = 30.0


def store_full() -> ResourceExhausted:
    """A write that Redis refused because it is at `maxmemory` (policy noeviction). The Redis
    text (which may name the server) is never passed on."""
    return ResourceExhausted(
        "the job store is full: too much audio is waiting to be transcribed; retry in "
        f"{STORE_FULL_RETRY_SECONDS:.0f} s",
        retry_after_seconds=STORE_FULL_RETRY_SECONDS,
        violations=[QuotaViolation("job-store", "Redis maxmemory")],
    )


def is_out_of_memory(error: BaseException) -> bool:
    """Redis refused a write for want of memory (plain command, MULTI/EXEC or script)."""
    if isinstance(error, redis.exceptions.OutOfMemoryError):
        return True
    # Inside EXEC or a script the reply is a plain error whose text carries Redis's OOM reason.
    return isinstance(error, redis.exceptions.ResponseError) and "OOM command not allowed" in str(
        error
    )


@contextlib.contextmanager
def redis_errors() -> Iterator[None]:
    """Redis being down is UNAVAILABLE (retryable) for the caller, never INTERNAL; Redis being
    full is RESOURCE_EXHAUSTED with a retry hint. The client has already retried for as long as
    its caller can wait (services.common.redis_client)."""
    try:
        yield
    except redis.exceptions.BusyLoadingError as error:
        log.warning("job_store_loading", error=str(error))
        raise Unavailable(
            "the job store is loading its data; retry in a few seconds", LOADING_RETRY_SECONDS
        ) from error
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
        if pool_exhausted(error):
            # Every pooled connection stayed busy for the pool's whole wait: load, not an outage.
            log.warning("job_store_busy")
            raise Unavailable(
                "the job store is busy (every connection of this server is in use); retry in a "
                "moment",
                BUSY_RETRY_SECONDS,
            ) from error
        log.warning("job_store_unavailable", error=str(error), error_type=type(error).__name__)
        raise Unavailable(
            "the job store is unavailable; retry in a few seconds", DOWN_RETRY_SECONDS
        ) from error
    except redis.exceptions.ResponseError as error:
        if is_out_of_memory(error):
            log.warning("job_store_full", error=str(error))
            raise store_full() from error
        raise
