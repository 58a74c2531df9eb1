"""The three families' window specs: declarations only, the engine is `streams.windows`.

Output tables (what the ClickHouse sink stores) start with window_start, window_end, the key
columns and version; then the columns below, in this order. Shares, means and rates that combine
keys or windows (online share per channel, mean rating, mean loss) are left to SQL over the counts
and sums, so that they stay correct when rolled up.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from models.events import FILINGS, NETWORK, SERVICE_CENTER
from streams.sessions import SessionSpec
from streams.windows import (
    Count,
    Derived,
    Flag,
    Is,
    Max,
    Number,
    Quantile,
    Ratio,
    SketchMap,
    Sum,
    WindowSpec,
    tumbling,
)


def _utilisation(table: pa.Table) -> np.ndarray:
    """max(rx, tx) / capacity per sample; NaN (absent) where the capacity is unknown or 0."""
    busiest = pc.max_element_wise(table.column("rx_bps"), table.column("tx_bps"))
    capacity = pc.if_else(pc.greater(table.column("capacity_bps"), 0), table.column("capacity_bps"), None)
    util = pc.fill_null(pc.divide(pc.cast(busiest, pa.float64()), capacity), np.nan)
    return util.to_numpy(zero_copy_only=False)


_called, _served = Is("kind", "called"), Is("kind", "served")
SERVICE_CENTER_SPEC = WindowSpec(
    family=SERVICE_CENTER,
    keys=("center_id",),
    windowing=tumbling(minutes=1),
    inputs={
        **{kind: Is("kind", kind) for kind in ("issued", "called", "served", "abandoned")},
        "opened": Is("kind", "counter_opened"),
        "closed": Is("kind", "counter_closed"),
        "wait": Number("wait_s", when=_called),
        "service": Number("service_s", when=_served),
        "rating": Number("rating", when=_served),
    },
    aggs=(
        Count("issued", "issued"), Count("called", "called"), Count("served", "served"),
        Count("abandoned", "abandoned"), Count("counters_opened", "opened"), Count("counters_closed", "closed"),
        Count("wait_count", "wait"), Sum("wait_sum", "wait"), Max("wait_max", "wait"),
        Quantile("wait_p50", "wait", 0.5), Quantile("wait_p90", "wait", 0.9), Quantile("wait_p99", "wait", 0.99),
        SketchMap("wait_sketch", "wait"),
        Count("service_count", "service"), Sum("service_sum", "service"), Quantile("service_p90", "service", 0.9),
        Count("rating_count", "rating"), Sum("rating_sum", "rating"),
    ),
)

_submitted, _processed = Is("kind", "submitted"), Is("kind", "processed")
_result = Is("kind", "result_issued")
FILINGS_SPEC = WindowSpec(
    family=FILINGS,
    keys=("agency_code", "channel", "level"),
    windowing=tumbling(minutes=5),
    inputs={
        "submitted": _submitted, "processed": _processed, "result_issued": _result,
        "rejected": Is("kind", "rejected"),
        "on_time": Flag("on_time", True, when=_processed), "late": Flag("on_time", False, when=_processed),
        "electronic": Flag("electronic", when=_result),
        **{flag: Flag(flag, when=_submitted) for flag in ("paid_online", "digitised", "reused_data")},
    },
    aggs=(
        *(Count(name, name) for name in ("submitted", "processed", "on_time", "late", "result_issued",
                                         "electronic", "rejected", "paid_online", "digitised", "reused_data")),
        Ratio("on_time_ratio", "on_time", "processed"),
        Ratio("paid_online_ratio", "paid_online", "submitted"),
    ),
)

# Latency and jitter come from a probe reply, which a down link does not give (the simulator then
# reports 0 ms): they count only samples with link_up, so an outage does not drag latency_p50 or
# the sums towards 0; mean latency = latency_sum / up_samples (every up sample has a latency).
# Loss counts every sample (100% while down is the truth): mean loss = loss_sum / samples.
_up = Flag("link_up")
NETWORK_SPEC = WindowSpec(
    family=NETWORK,
    keys=("node_id",),
    windowing=tumbling(minutes=1),
    inputs={
        "up": _up,
        "down": Flag("link_up", False),
        "latency": Number("latency_ms", when=_up),
        "jitter": Number("jitter_ms", when=_up),
        **{name: Number(f"{name}_{unit}") for name, unit in (
            ("loss", "pct"), ("rx", "bps"), ("tx", "bps"), ("capacity", "bps"))},
        "util": Derived("util", _utilisation),
    },
    aggs=(
        Count("samples"), Count("up_samples", "up"),
        Quantile("latency_p50", "latency", 0.5), Quantile("latency_p95", "latency", 0.95),
        Max("latency_max", "latency"), SketchMap("latency_sketch", "latency"), Sum("latency_sum", "latency"),
        Sum("jitter_sum", "jitter"), Sum("loss_sum", "loss"), Max("loss_max", "loss"),
        Sum("rx_bps_sum", "rx"), Sum("tx_bps_sum", "tx"), Max("capacity_bps", "capacity"),
        Max("util_max", "util"), Ratio("availability", "up_samples", "samples"),
    ),
    # An outage: consecutive link-down samples; over after an up sample or 2 minutes without one.
    sessions=SessionSpec(flag="down", gap_ms=120_000),
)

SPECS: dict[str, WindowSpec] = {s.name: s for s in (SERVICE_CENTER_SPEC, FILINGS_SPEC, NETWORK_SPEC)}
