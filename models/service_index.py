"""The Decision 766/QD-TTg service index: its five groups, their points and the shares that score them.

The weights are configuration (`models/service_index.toml`, or `IOC_INDEX_WEIGHTS_FILE`); the SQL that
computes the index from them is `sinks/service_index.py`. A group scores `points x` the weighted mean
of its parts that have data on that unit and day; the total is the groups' sum rescaled to 100 over
the groups that have data (a commune without a service center is not marked down for satisfaction).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_WEIGHTS = Path(__file__).with_name("service_index.toml")
GROUPS = ("transparency", "progress", "online", "satisfaction", "digitisation")  # the Decision's order
SHARES = ("electronic_results", "on_time", "online_application", "online_payment", "satisfaction", "digitised",
          "reused_data")


@dataclass(frozen=True)
class Group:
    name: str
    points: float
    parts: tuple[tuple[str, float], ...]  # (share, weight inside the group)


@dataclass(frozen=True)
class IndexWeights:
    groups: tuple[Group, ...]
    source: Path

    @property
    def points(self) -> float:
        return sum(g.points for g in self.groups)


def load_index_weights(path: Path | str | None = None) -> IndexWeights:
    """The weights of `path` (default: the bundled file), checked; ValueError naming what is wrong."""
    path = Path(path) if path else DEFAULT_WEIGHTS
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"index weights {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"index weights {path}: not valid TOML: {exc}") from None
    raw = data.get("groups")
    if not isinstance(raw, dict) or set(raw) != set(GROUPS):
        raise ValueError(f"index weights {path}: [groups.*] must be exactly {', '.join(GROUPS)}")
    groups = []
    for name in GROUPS:
        body = raw[name]
        points, parts = body.get("points"), body.get("parts")
        if isinstance(points, bool) or not isinstance(points, int | float) or points < 0:
            raise ValueError(f"index weights {path}: [groups.{name}] points must be a number >= 0")
        if not isinstance(parts, dict) or not parts:
            raise ValueError(f"index weights {path}: [groups.{name}] parts must name at least one share")
        for share, weight in parts.items():
            if share not in SHARES:
                raise ValueError(f"index weights {path}: [groups.{name}] unknown share {share!r}; "
                                 f"known: {', '.join(SHARES)}")
            if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
                raise ValueError(f"index weights {path}: [groups.{name}] {share} weight must be > 0")
        groups.append(Group(name, float(points), tuple((s, float(w)) for s, w in parts.items())))
    return IndexWeights(tuple(groups), path)
