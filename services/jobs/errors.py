"""Redis failures as the errors a caller can act on."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis.exceptions

from services.common.errors import Unavailable


@contextlib.contextmanager
def redis_errors() -> Iterator[None]:
    """Redis being down is UNAVAILABLE (retryable) for the caller, never INTERNAL. The client
    has already retried for as long as its caller can wait (services.common.redis_client)."""
    try:
        yield
    except redis.exceptions.BusyLoadingError as error:
        raise Unavailable("the job store (Redis) is loading its data; retry shortly") from error
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
        raise Unavailable(f"the job store (Redis) is unavailable: {error}") from error
