"""Health check of a compose worker: its /health answers 200 (streams/exporter.py: in its group, consuming,
ClickHouse reachable). A URL argument asks that endpoint; a directory falls back to the stats file being
fresh (a worker run without IOC_METRICS_PORT)."""

import sys
import time
import urllib.request
from pathlib import Path


def healthy(target: str) -> bool:
    if target.startswith("http"):
        try:
            with urllib.request.urlopen(target, timeout=4) as reply:
                return reply.status == 200
        except OSError:  # 503 (HTTPError), refused, timed out
            return False
    stats = list(Path(target).glob("worker-*.json"))
    return bool(stats) and time.time() - max(p.stat().st_mtime for p in stats) < 30


if __name__ == "__main__":
    sys.exit(0 if healthy(sys.argv[1] if len(sys.argv) > 1 else "http://localhost:9108/health") else 1)
