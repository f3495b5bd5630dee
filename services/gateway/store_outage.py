"""What the gateway does with a request whose quota check could not be made because the quota
store (Redis) failed: refuse it (the default) or let it through (SAYIT_QUOTA_FAIL_OPEN=true).

Refusing is the default because limits are part of the access rules: a tenant's rate and daily
audio are what it is allowed, and an outage of the store must not lift them (nor let one caller
hammer the transcribers while nobody counts). Letting through trades that for availability: a
deployment whose Redis is less reliable than its transcribers may choose it. Either way every
failure is counted and logged, at most one line per interval: during an outage every request
fails the same way.
"""

from __future__ import annotations

from services.common import logs
from services.common.errors import UNAVAILABLE_RETRY_SECONDS, Unavailable
from services.common.log_throttle import LogThrottle
from services.gateway import metrics

log = logs.get_logger("sayit.quotas")

# The caller's message names no endpoint and no Redis error (those are logged); the common
# interceptor appends the request id.
REFUSED_MESSAGE = (
    "the gateway cannot check this tenant's request limits right now (its quota store is "
    "unavailable), so the request was not accepted; retry in a few seconds"
)
LOG_INTERVAL_SECONDS = 10.0


class StoreOutage:
    def __init__(self, fail_open: bool, log_interval_seconds: float = LOG_INTERVAL_SECONDS) -> None:
        self.fail_open = fail_open
        self._interval = log_interval_seconds
        self._throttles: dict[str, LogThrottle] = {}

    def check_failed(self, tenant: str, error: Exception) -> None:
        """A check-and-charge failed with `error`: returns when the request may go on
        (fail-open), raises UNAVAILABLE with RetryInfo otherwise."""
        outcome = metrics.LET_THROUGH if self.fail_open else metrics.REFUSED
        metrics.QUOTA_STORE_ERRORS.labels(outcome=outcome).inc()
        self._log("quota_store_failed", tenant, error, outcome=outcome)
        if not self.fail_open:
            raise Unavailable(REFUSED_MESSAGE, UNAVAILABLE_RETRY_SECONDS) from error

    def refund_failed(self, tenant: str, error: Exception) -> None:
        """Giving back audio seconds failed: the caller already has its answer (the refusal
        that asked for the refund), so nothing is raised; the tenant is over-charged until the
        day's counter expires."""
        self._log("quota_refund_failed", tenant, error)

    def _log(self, event: str, tenant: str, error: Exception, **fields: str) -> None:
        throttle = self._throttles.setdefault(event, LogThrottle(self._interval))
        skipped = throttle.due()
        if skipped is not None:
            log.warning(event, tenant=tenant, error=str(error), skipped=skipped, **fields)
