"""Redis failures as the errors a caller can act on."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis.exceptions

from services.common.errors import Unavailable
from services.common.redis_client import pool_exhausted


@contextlib.contextmanager
def redis_errors() -> Iterator[None]:
    """Redis being down is UNAVAILABLE (retryable) for the caller, never INTERNAL. The client
    has already retried for as long as its caller can wait (services.common.redis_client)."""
    try:
        yield
    except redis.exceptions.BusyLoadingError as error:
        raise Unavailable("the job store (Redis) is loading its data; retry shortly") from error
    except redis.exceptions.ConnectionError as error:
        if pool_exhausted(error):
            # Every pooled connection stayed busy for the pool's whole wait: load, not an outage.
            raise Unavailable(
                "the job store is busy (every connection of this server is in use); retry in a "
                "moment"
            ) from error
        raise Unavailable(f"the job store (Redis) is unavailable: {error}") from error
    except redis.exceptions.TimeoutError as error:
        raise Unavailable(f"the job store (Redis) is unavailable: {error}") from error
