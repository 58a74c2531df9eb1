"""Realised KPI rates of a generated load, named like the scenario's rates and targets.

Definitions (the ones the calibration test and the summary table use):
- online_application, online_payment, digitisation, data_reuse: share of `submitted` dossiers
  (channel not in_person / paid_online / digitised / reused_data);
- on_time: share of `processed` dossiers with on_time; electronic_results: share of
  `result_issued` with electronic; rejection: rejected / (rejected + processed);
- abandonment: abandoned / (abandoned + called) tickets; mean_wait_min: mean wait of called tickets;
- availability: share of telemetry samples with link_up.
A rate over no events is None.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc

RATE_LABELS: dict[str, str] = {
    "online_application": "online application share",
    "online_payment": "online payment",
    "digitisation": "digitisation",
    "data_reuse": "data reuse",
    "electronic_results": "electronic results",
    "on_time": "on-time processing",
    "rejection": "rejection",
    "abandonment": "tickets abandoned",
    "mean_wait_min": "mean wait at a counter (min)",
    "availability": "network availability",
}


def _of_kind(table: pa.Table, *kinds: str) -> pa.Table:
    return table.filter(pc.is_in(table.column("kind"), value_set=pa.array(kinds)))


def _share(values: pa.ChunkedArray | pa.Array) -> tuple[float, int]:
    """(how many are true, how many there are): a rate as counts, so that parts of a run add up."""
    return float(pc.sum(pc.cast(values, pa.int64())).as_py() or 0), len(values)


def filing_counts(filings: pa.Table) -> dict[str, tuple[float, int]]:
    submitted = _of_kind(filings, "submitted")
    decided = _of_kind(filings, "processed", "rejected")
    return {
        "online_application": _share(pc.not_equal(submitted.column("channel"), "in_person")),
        "online_payment": _share(submitted.column("paid_online")),
        "digitisation": _share(submitted.column("digitised")),
        "data_reuse": _share(submitted.column("reused_data")),
        "electronic_results": _share(_of_kind(filings, "result_issued").column("electronic")),
        "on_time": _share(_of_kind(filings, "processed").column("on_time")),
        "rejection": _share(pc.equal(decided.column("kind"), "rejected")),
    }


def service_counts(tickets: pa.Table) -> dict[str, tuple[float, int]]:
    ended = _of_kind(tickets, "called", "abandoned")
    wait = _of_kind(tickets, "called").column("wait_s")
    return {
        "abandonment": _share(pc.equal(ended.column("kind"), "abandoned")),
        "mean_wait_min": (float(pc.sum(wait).as_py() or 0.0) / 60, len(wait)),
    }


def network_counts(telemetry: pa.Table) -> dict[str, tuple[float, int]]:
    return {"availability": _share(telemetry.column("link_up"))}


COUNTS = {"filings": filing_counts, "service_center": service_counts, "network": network_counts}


def rate_counts(family: str, table: pa.Table) -> dict[str, tuple[float, int]]:
    """Each rate of a family's events as (numerator, denominator)."""
    return COUNTS[family](table)


def realised_rates(tables: Mapping[str, pa.Table]) -> dict[str, float | None]:
    """All rates of the families present in `tables` (keyed by family name); None over no events."""
    rates: dict[str, float | None] = {}
    for family in (f for f in ("filings", "service_center", "network") if f in tables):
        rates.update({k: part / whole if whole else None for k, (part, whole) in
                      rate_counts(family, tables[family]).items()})
    return rates
