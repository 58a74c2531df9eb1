"""The event families of DESIGN.md section 4, plus alerts and dead letters, as `Family` specs.

Every event carries `event_id` (idempotency) and `event_time` (UTC). Keys: one entity always lands
on one partition (center id, agency code, node id).
"""

from __future__ import annotations

from models.schema import Family, Field

EVENT_ID = Field("event_id", "str", max_len=64)
EVENT_TIME = Field("event_time", "time")

SERVICE_CENTER_KINDS = ("issued", "called", "served", "abandoned", "counter_opened", "counter_closed")
FILING_KINDS = ("submitted", "processed", "result_issued", "rejected")
CHANNELS = ("online_full", "online_partial", "in_person")
LEVELS = ("province", "commune")

SERVICE_CENTER = Family(
    name="service_center",
    topic="ioc.service_center.events",
    key_field="center_id",
    fields=(
        EVENT_ID,
        EVENT_TIME,
        Field("center_id", "str", max_len=32),
        Field("kind", "enum", choices=SERVICE_CENTER_KINDS),
        Field("ticket_id", "str", required=False, max_len=64),
        Field("counter_id", "int", required=False, min=0, max=1000),
        Field("wait_s", "float", required=False, min=0, max=86_400),
        Field("service_s", "float", required=False, min=0, max=86_400),
        Field("rating", "int", required=False, min=1, max=4),
    ),
)

FILINGS = Family(
    name="filings",
    topic="ioc.filings.events",
    key_field="agency_code",
    fields=(
        EVENT_ID,
        EVENT_TIME,
        Field("agency_code", "str", max_len=32),
        Field("dossier_id", "str", max_len=64),
        Field("procedure_id", "str", max_len=32),
        Field("kind", "enum", choices=FILING_KINDS),
        Field("channel", "enum", choices=CHANNELS),
        Field("level", "enum", choices=LEVELS),
        Field("paid_online", "bool", required=False),
        Field("digitised", "bool", required=False),
        Field("reused_data", "bool", required=False),
        Field("due_time", "time", required=False),
        Field("on_time", "bool", required=False),
        Field("electronic", "bool", required=False),
    ),
)

NETWORK = Family(
    name="network",
    topic="ioc.network.telemetry",
    key_field="node_id",
    fields=(
        EVENT_ID,
        EVENT_TIME,
        Field("node_id", "str", max_len=32),
        Field("latency_ms", "float", min=0, max=600_000),
        Field("jitter_ms", "float", min=0, max=600_000),
        Field("loss_pct", "float", min=0, max=100),
        Field("rx_bps", "float", min=0, max=1e13),
        Field("tx_bps", "float", min=0, max=1e13),
        Field("capacity_bps", "float", min=0, max=1e13),
        Field("link_up", "bool"),
    ),
)

FAMILIES: dict[str, Family] = {f.name: f for f in (SERVICE_CENTER, FILINGS, NETWORK)}
FAMILY_BY_TOPIC: dict[str, Family] = {f.topic: f for f in FAMILIES.values()}

DEADLETTER_TOPIC = "ioc.deadletter"
# Incidents opened and resolved (streams.incidents: one JSON object per transition, keyed by subject).
ALERTS_TOPIC = "ioc.alerts"
# The families' emitted windows, keyed by province, for the incident stage (streams.signals).
SIGNALS_TOPIC = "ioc.signals"
ALL_TOPICS = (*FAMILY_BY_TOPIC, SIGNALS_TOPIC, ALERTS_TOPIC, DEADLETTER_TOPIC)

# A dead letter is the original bytes (the Kafka value) plus these headers, so nothing about the
# rejected message is lost and the reason can be counted without decoding the payload.
DEADLETTER_HEADERS = ("ioc-source-topic", "ioc-partition", "ioc-offset", "ioc-reason", "ioc-detail")

# Marks a message whose value is one Arrow IPC stream of many events (the bulk wire format).
ARROW_CONTENT_TYPE_HEADER = "content-type"
ARROW_CONTENT_TYPE = b"application/vnd.apache.arrow.stream"
