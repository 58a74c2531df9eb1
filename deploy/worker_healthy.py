"""Health check of a compose worker: its stats file (written every second by the housekeeping timer
in streams/app.py) is fresh, i.e. the event loop is alive and the worker is in its group."""

import sys
import time
from pathlib import Path

if __name__ == "__main__":
    data_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "/data")
    stats = list(data_dir.glob("worker-*.json"))
    fresh = bool(stats) and time.time() - max(p.stat().st_mtime for p in stats) < 30
    sys.exit(0 if fresh else 1)
