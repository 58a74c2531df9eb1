"""A minimal YAML writer for provisioning files (the project has no YAML library dependency).

Block mappings and sequences, scalars as YAML 1.2 understands them: strings always double-quoted
with JSON escapes (a JSON string is a valid YAML double-quoted scalar), numbers and booleans plain.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence


def _scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"cannot write {type(value).__name__} as a YAML scalar")


def _lines(value: object, indent: int) -> list[str]:
    pad = "  " * indent
    out: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str) or not key.replace("_", "").isalnum():
                raise ValueError(f"unsupported mapping key {key!r}")
            if isinstance(item, Mapping | list | tuple) and item:
                out.append(f"{pad}{key}:")
                out += _lines(item, indent + 1)
            else:
                out.append(f"{pad}{key}: {_empty(item) if isinstance(item, Mapping | list | tuple) else _scalar(item)}")
        return out
    if isinstance(value, Sequence) and not isinstance(value, str):
        for item in value:
            if isinstance(item, Mapping) and item:
                first, *rest = _lines(item, indent + 1)
                out.append(f"{pad}- {first.lstrip()}")
                out += rest
            else:
                out.append(f"{pad}- {_scalar(item)}")
        return out
    return [f"{pad}{_scalar(value)}"]


def _empty(value: object) -> str:
    return "{}" if isinstance(value, Mapping) else "[]"


def dumps(document: Mapping[str, object], header: str = "") -> str:
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comment + "\n".join(_lines(document, 0)) + "\n"
