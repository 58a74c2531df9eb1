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


# Server error codes that blame the rows themselves (a value that does not parse or convert, a
# column the table lacks): the same batch fails every time, other batches may succeed.
DATA_ERROR_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        8,  # THERE_IS_NO_COLUMN
        10,  # NOT_FOUND_COLUMN_IN_BLOCK
        16,  # NO_SUCH_COLUMN_IN_TABLE
        26,  # CANNOT_PARSE_QUOTED_STRING
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        43,  # ILLEGAL_TYPE_OF_ARGUMENT
        44,  # ILLEGAL_COLUMN
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        131,  # TOO_LARGE_STRING_SIZE
        349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
        469,  # VIOLATED_CONSTRAINT
        1001,  # STD_EXCEPTION: what the Arrow reader throws on malformed input
    }
)


def classify(exc: BaseException) -> str:
    """'retry' (transient), 'reject' (the batch's own data is bad) or 'fatal' (configuration:
    authentication, permissions, a missing table or database; no batch can succeed until fixed)."""
    if is_retryable(exc):
        return "retry"
    code = getattr(exc, "code", None)
    if code in DATA_ERROR_CODES:
        return "reject"
    return "fatal"


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
