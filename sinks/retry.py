"""Which ClickHouse failures are worth retrying, and how long to wait between attempts."""

from __future__ import annotations

import random

from clickhouse_connect.driver.exceptions import OperationalError, ProgrammingError
from urllib3.exceptions import HTTPError

# Server error codes that describe a transient condition (the same insert may succeed later).
# Everything else with a code (unknown table, type mismatch, authentication) fails the same way
# every time, so retrying would only stall the pipeline.
RETRYABLE_CODES = frozenset(
    {
        3,  # UNEXPECTED_END_OF_FILE: connection cut mid-body
        32,  # ATTEMPT_TO_READ_AFTER_EOF
        159,  # TIMEOUT_EXCEEDED
        164,  # READONLY: replica or disk temporarily read-only
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        236,  # ABORTED
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        252,  # TOO_MANY_PARTS: merges are behind; back off and let them catch up
        285,  # TOO_FEW_LIVE_REPLICAS
        319,  # UNKNOWN_STATUS_OF_INSERT
        394,  # QUERY_WAS_CANCELLED (server shutting down)
        425,  # SYSTEM_ERROR
        999,  # KEEPER_EXCEPTION
    }
)


def is_retryable(exc: BaseException) -> bool:
    """True for connection-level failures and transient server errors."""
    if isinstance(exc, ProgrammingError):  # client misuse: closed client, second chDB path, bad setting
        return False
    code = getattr(exc, "code", None)
    if code is not None:
        return code in RETRYABLE_CODES
    # No server code: the request never got a ClickHouse answer (refused, reset, timed out, 503).
    return isinstance(exc, (OperationalError, HTTPError, ConnectionError, TimeoutError))


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with 'equal jitter': half fixed, half random, so writers restarted
    together do not hammer a recovering server in lockstep. `attempt` counts from 1."""
    ceiling = min(max_s, base_s * 2 ** (attempt - 1))
    return ceiling / 2 + (rng or random).random() * ceiling / 2
