"""A strict parser for the YAML subset our compose and provisioning files use (no YAML library is a
dependency of the project). Where PyYAML happens to be installed, `load` also parses with it and
insists on the same result, so the subset cannot drift from real YAML unnoticed.

Supported: comments, block mappings and sequences (also `- key: value` items), plain, single- and
double-quoted scalars, one-line flow sequences of scalars, `{}` / `[]`. Anything else (anchors,
aliases, tags, block scalars, multi-line flow collections) is an error, not a guess.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


class YamlSubsetError(ValueError):
    pass


@dataclass
class _Line:
    number: int
    indent: int
    text: str  # without indentation and comment


def _strip_comment(text: str) -> str:
    out, quote = [], ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote and not (quote == '"' and text[i - 1] == "\\"):
                quote = ""
        elif ch in "\"'" and (i == 0 or text[i - 1] in " [,:-{"):
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t"):
            break
        out.append(ch)
    return "".join(out).rstrip()


def _lines(source: str) -> list[_Line]:
    lines = []
    for number, raw in enumerate(source.splitlines(), start=1):
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise YamlSubsetError(f"line {number}: tab in indentation")
        text = _strip_comment(raw.strip())
        if text:
            lines.append(_Line(number, len(raw) - len(raw.lstrip(" ")), text))
    return lines


_INT = re.compile(r"[-+]?\d+")
_FLOAT = re.compile(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?")


def _scalar(text: str, number: int) -> Any:
    if not text or text[0] in "&*!|>" or (text[0] == "{" and text != "{}"):
        raise YamlSubsetError(f"line {number}: unsupported or empty YAML value {text!r}")
    if text.startswith('"'):
        if not text.endswith('"') or len(text) < 2:
            raise YamlSubsetError(f"line {number}: unterminated string")
        return json.loads(text)
    if text.startswith("'"):
        if not text.endswith("'") or len(text) < 2:
            raise YamlSubsetError(f"line {number}: unterminated string")
        return text[1:-1].replace("''", "'")
    if text.startswith("["):
        return _flow_sequence(text, number)
    if text == "{}":
        return {}
    if text in ("null", "~", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def _flow_sequence(text: str, number: int) -> list[Any]:
    if not text.endswith("]"):
        raise YamlSubsetError(f"line {number}: flow sequences must close on their line")
    inner = text[1:-1].strip()
    if not inner:
        return []
    items, current, quote = [], [], ""
    for i, ch in enumerate(inner):
        if quote:
            current.append(ch)
            if ch == quote and not (quote == '"' and inner[i - 1] == "\\"):
                quote = ""
        elif ch in "\"'":
            quote = ch
            current.append(ch)
        elif ch in "[]{}":
            raise YamlSubsetError(f"line {number}: nested flow collections are not supported")
        elif ch == ",":
            items.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    items.append("".join(current).strip())
    return [_scalar(item, number) for item in items]


def _split_key(text: str, number: int) -> tuple[str, str] | None:
    """`key: value` -> (key, value); None when the line is not a mapping entry."""
    if text.startswith(('"', "'")):
        m = re.match(r"""("(?:[^"\\]|\\.)*"|'(?:[^']|'')*')\s*:(\s+|$)(.*)""", text)
        if not m:
            return None
        return str(_scalar(m.group(1), number)), m.group(3)
    m = re.match(r"([^\s:][^:]*?):(\s+|$)(.*)", text)
    if not m or m.group(1).startswith(("[", "{", "-")):
        return None
    return m.group(1), m.group(3)


def _block(lines: list[_Line], i: int, indent: int) -> tuple[Any, int]:
    if lines[i].text.startswith("- ") or lines[i].text == "-":
        return _sequence(lines, i, indent)
    return _mapping(lines, i, indent)


def _value(lines: list[_Line], i: int, parent_indent: int, rest: str, number: int) -> tuple[Any, int]:
    if rest:
        return _scalar(rest, number), i
    # A nested block, or null. Sequences may sit at the parent's indentation (compose style).
    if i < len(lines) and (lines[i].indent > parent_indent or
                           (lines[i].indent == parent_indent and lines[i].text.startswith("- "))):
        return _block(lines, i, lines[i].indent)
    return None, i


def _mapping(lines: list[_Line], i: int, indent: int) -> tuple[dict[str, Any], int]:
    out: dict[str, Any] = {}
    while i < len(lines) and lines[i].indent == indent and not lines[i].text.startswith("- "):
        line = lines[i]
        split = _split_key(line.text, line.number)
        if split is None:
            raise YamlSubsetError(f"line {line.number}: expected `key: value`, got {line.text!r}")
        key, rest = split
        if key in out:
            raise YamlSubsetError(f"line {line.number}: duplicate key {key!r}")
        out[key], i = _value(lines, i + 1, indent, rest, line.number)
    if i < len(lines) and lines[i].indent > indent:
        raise YamlSubsetError(f"line {lines[i].number}: unexpected indentation")
    return out, i


def _sequence(lines: list[_Line], i: int, indent: int) -> tuple[list[Any], int]:
    out: list[Any] = []
    while i < len(lines) and lines[i].indent == indent and (lines[i].text.startswith("- ") or lines[i].text == "-"):
        line = lines[i]
        rest = line.text[1:].strip()
        item_indent = indent + 2
        if not rest:
            item, i = _value(lines, i + 1, indent, "", line.number)
        elif _split_key(rest, line.number) is not None:
            # `- key: value` opens a mapping whose further keys align with `key`.
            lines[i] = _Line(line.number, item_indent, rest)
            item, i = _mapping(lines, i, item_indent)
        else:
            item, i = _scalar(rest, line.number), i + 1
        out.append(item)
    return out, i


def load_subset(source: str) -> Any:
    lines = _lines(source)
    if not lines:
        return None
    value, i = _block(lines, 0, lines[0].indent)
    if i != len(lines):
        raise YamlSubsetError(f"line {lines[i].number}: unexpected content {lines[i].text!r}")
    return value


def load(source: str) -> Any:
    value = load_subset(source)
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        return value
    if yaml.safe_load(source) != value:
        raise YamlSubsetError("the YAML subset parser and PyYAML disagree on this document")
    return value
