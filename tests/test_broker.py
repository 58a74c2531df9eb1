"""The local Kafka's cluster id: Kafka's storage tool refuses ids starting with '-' (taken for an option)."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest

from ioc.broker import (
    _kafka_properties,
    format_kafka_storage,
    free_port,
    kafka_available,
    kafka_cluster_id,
    kafka_libs,
)

DASH_FIRST = uuid.UUID(bytes=b"\xf8" + bytes(15))  # urlsafe base64 '-' is 62: 0b111110 in the first 6 bits


def storage_format(tmp_path: Path, cluster_id: str) -> None:
    tmp_path.mkdir()
    props = tmp_path / "server.properties"
    props.write_text(_kafka_properties(free_port(), free_port(), tmp_path / "data", 1))
    format_kafka_storage(props, cluster_id, kafka_libs())


def test_a_cluster_id_starting_with_a_dash_is_drawn_again() -> None:
    draws = iter([DASH_FIRST, uuid.UUID(int=7)])
    assert base64.urlsafe_b64encode(DASH_FIRST.bytes).decode().startswith("-")
    cluster_id = kafka_cluster_id(lambda: next(draws))
    assert cluster_id == base64.urlsafe_b64encode(uuid.UUID(int=7).bytes).decode().rstrip("=")
    assert all(not kafka_cluster_id().startswith("-") for _ in range(2000))


@pytest.mark.skipif(not kafka_available(), reason="Apache Kafka needs java and mvn")
def test_kafka_storage_tool_refuses_a_dash_id_and_formats_ours(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="Kafka storage format failed"):
        storage_format(tmp_path / "dash", base64.urlsafe_b64encode(DASH_FIRST.bytes).decode().rstrip("="))
    storage_format(tmp_path / "ours", kafka_cluster_id())
    assert (tmp_path / "ours" / "data" / "meta.properties").exists()
