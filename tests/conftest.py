"""Shared fixtures: real brokers (Apache Kafka 3.9 from Maven jars, and Tansu), never mocks.

`broker` is parametrized over both kinds; `IOC_TEST_BROKER=kafka|tansu` restricts it to one.
Each test module gets fresh brokers, so topics start empty.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from ioc.broker import LocalBroker, kafka_available


def broker_kinds() -> list[str]:
    chosen = os.environ.get("IOC_TEST_BROKER", "")
    if chosen:
        return [chosen]
    return ["kafka", "tansu"] if kafka_available() else ["tansu"]


@pytest.fixture(scope="module", params=broker_kinds())
def broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    local = LocalBroker(request.param, tmp_path_factory.mktemp(f"broker-{request.param}"))
    local.start()
    try:
        yield local
    finally:
        local.stop()
