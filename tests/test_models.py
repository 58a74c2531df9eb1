"""Event schemas: JSON and Arrow round trips, every rejection reason, and table/record agreement."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.events import FAMILIES, FILINGS, SERVICE_CENTER
from models.reference import ProvinceSpec, build_reference
from models.schema import (
    Family,
    Rejection,
    decode_json_batch,
    encode_json,
    format_time,
    parse_time,
    records_to_table,
    table_to_json_messages,
    validate_record,
    validate_table,
)
from models.settings import Settings

NOW = parse_time("2025-07-14T12:00:00Z")
SKEW = 300_000
T0 = parse_time("2025-07-14T08:00:00.123Z")


def valid_record(family: Family, i: int = 0) -> dict[str, Any]:
    base = {"event_id": f"e-{i}", "event_time": T0 + i}
    if family is SERVICE_CENTER:
        return base | {"center_id": "QNG-HCC", "kind": "served", "ticket_id": f"t{i}", "counter_id": 3,
                       "wait_s": 120.5, "service_s": 300.0, "rating": 4}
    if family is FILINGS:
        return base | {"agency_code": "000.00.01.H55", "dossier_id": f"d{i}", "procedure_id": "QNG-P0001",
                       "kind": "submitted", "channel": "online_full", "level": "province", "paid_online": True,
                       "digitised": True, "reused_data": False, "due_time": T0 + 86_400_000}
    return base | {"node_id": "CORE-01", "latency_ms": 4.2, "jitter_ms": 0.3, "loss_pct": 0.0, "rx_bps": 1e8,
                   "tx_bps": 5e7, "capacity_bps": 1e10, "link_up": True}


@pytest.mark.parametrize("family", FAMILIES.values(), ids=list(FAMILIES))
def test_json_round_trip(family: Family) -> None:
    records = [valid_record(family, i) for i in range(5)]
    messages = [encode_json(family, r) for r in records]
    table = decode_json_batch(family, messages)
    assert table.schema == family.schema
    assert table.equals(records_to_table(family, records))
    assert table_to_json_messages(family, table) == messages
    assert all(r is None for r in validate_table(family, table, NOW, SKEW))


@pytest.mark.parametrize("family", FAMILIES.values(), ids=list(FAMILIES))
def test_arrow_round_trip(family: Family) -> None:
    table = records_to_table(family, [valid_record(family, i) for i in range(5)])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, family.schema) as writer:
        writer.write_table(table)
    back = pa.ipc.open_stream(io.BytesIO(sink.getvalue().to_pybytes())).read_all()
    assert back.equals(table)


def test_time_format_is_iso_utc_with_milliseconds() -> None:
    assert format_time(T0) == "2025-07-14T08:00:00.123Z"
    assert parse_time(format_time(T0)) == T0


SC = SERVICE_CENTER
GOOD = valid_record(SC)
REJECTIONS: list[tuple[Any, str]] = [
    ([1, 2], "wrong_type"),
    ({k: v for k, v in GOOD.items() if k != "center_id"}, "missing_field:center_id"),
    (GOOD | {"center_id": ""}, "missing_field:center_id"),
    (GOOD | {"wait_s": "slow"}, "wrong_type:wait_s"),
    (GOOD | {"rating": True}, "wrong_type:rating"),
    (GOOD | {"event_time": "yesterday"}, "wrong_type:event_time"),
    (GOOD | {"kind": "teleported"}, "unknown_enum:kind"),
    (GOOD | {"rating": 9}, "out_of_range:rating"),
    (GOOD | {"wait_s": -1.0}, "out_of_range:wait_s"),
    (GOOD | {"wait_s": float("nan")}, "out_of_range:wait_s"),
    (GOOD | {"ticket_id": "x" * 10_000}, "oversized:ticket_id"),
    (GOOD | {"event_time": NOW + SKEW + 1}, "future_time:event_time"),
    (GOOD | {"event_time": parse_time("1970-01-02T00:00:00Z")}, "too_old:event_time"),
]


@pytest.mark.parametrize(("record", "reason"), REJECTIONS, ids=[r for _, r in REJECTIONS])
def test_every_rejection_reason(record: Any, reason: str) -> None:
    if isinstance(record, dict) and isinstance(record.get("event_time"), int):
        record = record | {"event_time": format_time(record["event_time"])}
    rejection = validate_record(SC, record, NOW, SKEW)
    assert rejection is not None
    assert str(rejection) == reason


def test_valid_records_pass() -> None:
    for family in FAMILIES.values():
        record = valid_record(family)
        as_json = orjson.loads(encode_json(family, record))
        assert validate_record(family, as_json, NOW, SKEW) is None


_field_values = st.one_of(
    st.none(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.text(max_size=200), st.sampled_from(["served", "issued", "online_full", "province", "2025-07-14T08:00:00Z"]),
)


@settings(max_examples=300, deadline=None)
@given(family=st.sampled_from(list(FAMILIES.values())), data=st.data())
def test_table_and_record_validation_agree(family: Family, data: st.DataObject) -> None:
    """The vectorized hot path and the one-record path reject the same records for the same reason."""
    record = {k: (format_time(v) if k in ("event_time", "due_time") else v)
              for k, v in valid_record(family).items()}
    for f in data.draw(st.lists(st.sampled_from(family.fields), max_size=3, unique=True)):
        record[f.name] = data.draw(_field_values)
    try:
        message = orjson.dumps(record)
    except (TypeError, orjson.JSONEncodeError):  # e.g. integers beyond 64 bits: not JSON we would receive
        return
    by_record = validate_record(family, orjson.loads(message), NOW, SKEW)  # orjson writes inf as null
    try:
        table = decode_json_batch(family, [message])
    except pa.ArrowInvalid:
        assert by_record is not None  # whatever the C++ decoder refuses, the record path refuses too
        return
    by_table = validate_table(family, table, NOW, SKEW)[0]
    if by_record is None or by_record.reason != "wrong_type":
        assert by_table == by_record or (by_table is not None and by_record is not None
                                         and by_table.reason == by_record.reason)


def test_rejection_renders_reason_and_field() -> None:
    assert str(Rejection("missing_field", "kind")) == "missing_field:kind"
    assert str(Rejection("undecodable")) == "undecodable"


def test_reference_counts_match_the_documents() -> None:
    ref = build_reference(ProvinceSpec())
    agencies = ref.agencies.to_pydict()
    assert len(agencies["agency_code"]) == 108
    assert agencies["level"].count("province") == 12 and agencies["level"].count("commune") == 96
    assert len(set(agencies["agency_code"])) == 108
    modes = ref.procedures.column("online_mode").to_pylist()
    assert len(modes) == 2184 and modes.count("full") == 848 and modes.count("partial") == 1336
    assert sum(1 for w in ref.procedures.column("demand_weight").to_pylist() if w == 0) == 550
    assert ref.centers.num_rows == 97 and ref.nodes.num_rows == 2 + 108 + 19  # cores, access, aggregation
    assert build_reference().agencies.equals(ref.agencies)  # deterministic


def test_reference_geography_is_in_the_merged_province_and_says_it_is_approximate() -> None:
    ref = build_reference()
    for table in (ref.communes, ref.centers, ref.nodes):
        lat, lon = table.column("latitude").to_numpy(), table.column("longitude").to_numpy()
        # Quang Ngai + Kon Tum: roughly 13.9-15.6 N, 107.3-109.2 E (Ly Son island at 109.1 E).
        assert ((lat > 13.9) & (lat < 15.6) & (lon > 107.3) & (lon < 109.2)).all()
        assert set(table.column("geo_accuracy").to_pylist()) == {"approximate"}
    kon_tum = [a for a, n in zip(ref.communes.column("area").to_pylist(),
                                  ref.communes.column("longitude").to_pylist(), strict=True) if n < 108.4]
    assert kon_tum and set(kon_tum) <= {"Kon Tum", "Đăk Hà", "Đăk Tô", "Ngọc Hồi", "Đăk Glei", "Sa Thầy",
                                        "Kon Plông", "Kon Rẫy", "Sơn Hà", "Trà Bồng"}


def test_network_is_a_tree_and_an_aggregation_outage_cuts_off_its_area() -> None:
    from models.reference import downstream

    nodes = build_reference().nodes.to_pylist()
    by_id = {n["node_id"]: n for n in nodes}
    for n in nodes:  # every uplink exists and the way up ends at a core node
        seen, up = set(), n
        while up["uplink"] is not None:
            assert up["node_id"] not in seen
            seen.add(up["node_id"])
            up = by_id[up["uplink"]]
        assert up["role"] == "core"
    below = downstream(build_reference().nodes, "AGG-02")
    area = {n["node_id"] for n in nodes if n["area"] == "Bình Sơn" and n["role"] == "access"}
    assert below[0] == "AGG-02" and set(below[1:]) == area and len(area) == 7
    assert len(downstream(build_reference().nodes, "CORE-01")) + len(downstream(build_reference().nodes,
                                                                               "CORE-02")) == len(nodes)


def test_settings_from_env_reads_prefix_and_secret_files(tmp_path: Any) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    s = Settings.from_env({"IOC_CLICKHOUSE_DSN": "http://ch:8123", "IOC_TOPIC_PARTITIONS": "8",
                           "IOC_CLICKHOUSE_PASSWORD_FILE": str(secret), "IOC_CLICKHOUSE_VERIFY_TLS": "false"})
    assert s.clickhouse_dsn == "http://ch:8123" and s.topic_partitions == 8
    assert s.clickhouse_password == "s3cret" and s.clickhouse_verify_tls is False
    assert "s3cret" not in repr(s)
