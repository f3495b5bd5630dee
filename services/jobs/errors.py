"""Redis failures as the errors a caller can act on.

The caller never reads Redis's own text (it names the Redis endpoint): that is logged, with the
request id bound to the call, and the caller is told to retry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis.exceptions

from services.common import logs
from services.common.errors import Unavailable

log = logs.get_logger("sayit.jobs")

# Redis restarting or failing over takes seconds; a reload of a large dataset longer.
DOWN_RETRY_SECONDS = 2.0
LOADING_RETRY_SECONDS = 5.0


@contextlib.contextmanager
def redis_errors() -> Iterator[None]:
    """Redis being down is UNAVAILABLE (retryable) for the caller, never INTERNAL. The client
    has already retried for as long as its caller can wait (services.common.redis_client)."""
    try:
        yield
    except redis.exceptions.BusyLoadingError as error:
        log.warning("job_store_loading", error=str(error))
        raise Unavailable(
            "the job store is loading its data; retry in a few seconds", LOADING_RETRY_SECONDS
        ) from error
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
        log.warning("job_store_unavailable", error=str(error), error_type=type(error).__name__)
        raise Unavailable(
            "the job store is unavailable; retry in a few seconds", DOWN_RETRY_SECONDS
        ) from error
