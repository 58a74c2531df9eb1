"""Stand-in for Grafana + the grafana-clickhouse-datasource plugin turning a panel's rawSql into the
SQL that reaches ClickHouse, for a given time range, interval and template-variable selection.

No Grafana can run here, so the tests run every panel's SQL through this stand-in and then through
chDB. It follows the three stages a query goes through, each written after the code it copies:

1. Plugin frontend, `Datasource.applyTemplateVariables` (src/data/CHDatasource.ts): first
   `applyConditionalAll` -- from the LAST `$__conditionalAll(` backwards, split the arguments at
   commas at bracket depth 1 (`getMacroArgs`), look up the variable named by the second argument
   minus its `$`, and replace the macro by `1=1` when its current value `.toString()` is `''` or
   `'$__all'`, else by the condition; the replacement is JS `String.replace` with a string
   pattern (first occurrence only).
2. Grafana's template service `replace(sql, scopedVars, this.format)`: `$var`, `${var}`,
   `${var:format}` and `[[var]]` are replaced; unknown names are left as they are (so `$__...`
   macros survive to the backend). The plugin's `format` callback joins an array as
   `'a','b'` and leaves a single value bare; `:singlequote` quotes every value, escaping `'` as
   `\\'` (scenes formatRegistry). "All" without a custom all value means every option's value.
3. Plugin backend, `sqlutil.Interpolate` (grafana-plugin-sdk-go data/sqlutil/macros.go) with the
   plugin's macros (pkg/macros/macros.go): a macro is `\\$__name\\b`; arguments only when `(`
   follows the name immediately, split at commas at depth 1 and trimmed (`parseArgs`); every
   identical match is replaced (`strings.Replace(..., -1)`). Times are Go `time.Time` from the
   request (Unix seconds via `toDateTime(%d)`, milliseconds via `fromUnixTimestamp64Milli(%d)`,
   dates via `toDate('YYYY-MM-DD')` in the server's zone, UTC in the Grafana image);
   `$__timeInterval(c)` is `toStartOfInterval(toDateTime(c), INTERVAL max(interval_s, 1) second)`.

The interval itself is Grafana's `rangeutil.calculateInterval(range, maxDataPoints, minInterval)`:
`roundInterval((to - from) / maxDataPoints)`, raised to the panel's min interval.

Anything this stand-in does not model (statement macros such as `$__columns`, the newer
`$__timeFrom`/`$__timeGroup` overrides, ad-hoc filters, custom all values) raises
`NotEmulated`, so a dashboard cannot silently depend on behaviour nobody checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

ALL = "$__all"


class NotEmulated(ValueError):
    """The SQL uses something the stand-in does not reproduce faithfully."""


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("time range bounds must be timezone-aware")

    @property
    def span_ms(self) -> int:
        return round((self.end - self.start).total_seconds() * 1000)


@dataclass(frozen=True)
class Variable:
    """A template variable as Grafana holds it at query time."""

    name: str
    current: tuple[str, ...]  # (ALL,) when "All" is selected
    options: tuple[str, ...] = ()  # option values (without the All option)

    @property
    def is_all(self) -> bool:
        return self.current in ((ALL,), ("",), ())

    def interpolation_value(self) -> str | list[str]:
        # A multi-value variable holds a list; "All" without custom all value means every option.
        if self.is_all:
            return list(self.options)
        return list(self.current)


# ---------------------------------------------------------------- Grafana: interval

_ROUND_STEPS = (  # rangeutil.roundInterval: (upper bound exclusive, rounded value), milliseconds
    (10, 1), (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000),
    (3500, 2000), (7500, 5000), (12500, 10000), (17500, 15000), (25000, 20000), (45000, 30000),
    (90000, 60000), (210000, 120000), (450000, 300000), (750000, 600000), (1050000, 900000),
    (1500000, 1200000), (2700000, 1800000), (5400000, 3600000), (9000000, 7200000),
    (16200000, 10800000), (32400000, 21600000), (86400000, 43200000), (604800000, 86400000),
    (1814400000, 604800000), (3628800000, 2592000000),
)
_UNIT_S = {"y": 31536000, "M": 2592000, "w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}


def round_interval(interval_ms: float) -> int:
    for bound, value in _ROUND_STEPS:
        if interval_ms < bound:
            return value
    return 31536000000


def interval_to_ms(text: str) -> int:
    """rangeutil.describeInterval: unit-less means seconds."""
    m = re.fullmatch(r"(-?\d+(?:\.\d+)?)(ms|[Mwdhmsy])?", text.strip())
    if not m:
        raise ValueError(f"invalid interval {text!r}")
    return int(int(float(m.group(1))) * _UNIT_S[m.group(2) or "s"] * 1000)


def calculate_interval_ms(time_range: TimeRange, max_data_points: int, min_interval: str | None = None) -> int:
    interval = round_interval(time_range.span_ms / max_data_points)
    low = interval_to_ms(min_interval) if min_interval else 1
    return max(interval, low)


# ---------------------------------------------------------------- plugin frontend: $__conditionalAll

_MACRO_ARGS = re.compile(r"\(|\)|,")


def _get_macro_args(query: str, args_index: int) -> list[str]:
    """CHDatasource.getMacroArgs, including its off-by-one `lastArgEndIndex = 1` start."""
    args: list[str] = []
    bracket_count = 0
    last_arg_end = 1
    sub = query[args_index:]
    for m in _MACRO_ARGS.finditer(sub):
        node, end = m.group(0), m.end()
        if node == "(":
            bracket_count += 1
        elif node == ")":
            bracket_count -= 1
        if node == "," and bracket_count == 1:
            args.append(sub[last_arg_end:end - 1])
            last_arg_end = end
        if bracket_count == 0:
            args.append(sub[last_arg_end:end - 1])
            return args
    return []


def _js_replace_first(text: str, pattern: str, replacement: str) -> str:
    # JS String.replace(string, string) expands $$, $&, $` and $' in the replacement; refuse them.
    if re.search(r"\$[$&`']", replacement):
        raise NotEmulated(f"replacement has a JS special pattern: {replacement!r}")
    return text.replace(pattern, replacement, 1)


def apply_conditional_all(sql: str, variables: Mapping[str, Variable]) -> str:
    macro = "$__conditionalAll("
    index = sql.rfind(macro)
    while index != -1:
        params = _get_macro_args(sql, index + len(macro) - 1)
        if len(params) != 2:
            return sql
        name = params[1].strip()[1:]
        var = variables.get(name)
        # key?.current.value.toString(): a missing variable keeps the condition (undefined != '').
        phrase = "1=1" if var is not None and (var.is_all or ",".join(var.current) == "") else params[0]
        sql = _js_replace_first(sql, f"{macro}{params[0]},{params[1]})", phrase)
        index = sql.rfind(macro)
    return sql


# ---------------------------------------------------------------- Grafana: template service

_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")


def _plugin_format(value: str | list[str]) -> str:
    """CHDatasource.format: the default for variables without an explicit format."""
    if isinstance(value, list):
        return "'" + "','".join(value) + "'"
    return value


def _single_quote(value: str | list[str]) -> str:
    def q(v: str) -> str:
        return "'" + v.replace("'", "\\'") + "'"

    if isinstance(value, list):
        return ",".join(q(v) for v in value)
    return q(value)


_FORMATS: dict[str, Callable[[str | list[str]], str]] = {
    "singlequote": _single_quote,
    "csv": lambda v: ",".join(v) if isinstance(v, list) else v,
    "raw": lambda v: ",".join(v) if isinstance(v, list) else v,
}


def replace_variables(sql: str, variables: Mapping[str, Variable], builtins: Mapping[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(6)
        if m.group(5):
            raise NotEmulated(f"field path in variable reference {m.group(0)!r}")
        if name in builtins:
            return builtins[name]
        var = variables.get(name)
        if var is None:
            return m.group(0)  # unknown: left for the backend (macros) or as typed
        value = var.interpolation_value()
        if fmt is None:
            return _plugin_format(value)
        if fmt not in _FORMATS:
            raise NotEmulated(f"variable format {fmt!r}")
        return _FORMATS[fmt](value)

    return _VARIABLE.sub(sub, sql)


# ---------------------------------------------------------------- plugin backend: macros


def _to_datetime(t: datetime) -> str:
    return f"toDateTime({int(t.timestamp() // 1)})"


def _to_datetime64(t: datetime) -> str:
    return f"fromUnixTimestamp64Milli({int(t.timestamp() * 1000 // 1)})"


def _to_date(t: datetime) -> str:
    return f"toDate('{t.astimezone(UTC):%Y-%m-%d}')"


@dataclass(frozen=True)
class QueryContext:
    time_range: TimeRange
    interval_ms: int


def _args(n: int) -> Callable[[Callable[..., str]], Callable[[QueryContext, list[str]], str]]:
    def wrap(fn: Callable[..., str]) -> Callable[[QueryContext, list[str]], str]:
        def run(ctx: QueryContext, args: list[str]) -> str:
            if len(args) != n:
                raise ValueError(f"unexpected number of arguments: expected {n}, received {len(args)}")
            return fn(ctx, *args)

        return run

    return wrap


def _any_args(fn: Callable[[QueryContext], str]) -> Callable[[QueryContext, list[str]], str]:
    return lambda ctx, _args: fn(ctx)


def _interval_s(ctx: QueryContext) -> int:
    return int(max(ctx.interval_ms / 1000, 1))


MACROS: dict[str, Callable[[QueryContext, list[str]], str]] = {
    "fromTime": _any_args(lambda c: _to_datetime(c.time_range.start)),
    "toTime": _any_args(lambda c: _to_datetime(c.time_range.end)),
    "fromTime_ms": _any_args(lambda c: _to_datetime64(c.time_range.start)),
    "toTime_ms": _any_args(lambda c: _to_datetime64(c.time_range.end)),
    "timeFilter": _args(1)(lambda c, col: f"{col} >= {_to_datetime(c.time_range.start)} AND "
                                          f"{col} <= {_to_datetime(c.time_range.end)}"),
    "timeFilter_ms": _args(1)(lambda c, col: f"{col} >= {_to_datetime64(c.time_range.start)} AND "
                                             f"{col} <= {_to_datetime64(c.time_range.end)}"),
    "dateFilter": _args(1)(lambda c, col: f"{col} >= {_to_date(c.time_range.start)} AND "
                                          f"{col} <= {_to_date(c.time_range.end)}"),
    "timeInterval": _args(1)(lambda c, col: f"toStartOfInterval(toDateTime({col}), INTERVAL {_interval_s(c)} second)"),
    "timeInterval_ms": _args(1)(
        lambda c, col: f"toStartOfInterval(toDateTime64({col}, 3), INTERVAL {int(max(c.interval_ms, 1))} millisecond)"
    ),
    "interval_s": _any_args(lambda c: str(_interval_s(c))),
}


def _date_time_filter(ctx: QueryContext, args: list[str]) -> str:
    if len(args) != 2:
        raise ValueError(f"unexpected number of arguments: expected 2, received {len(args)}")
    d, t = args
    r = ctx.time_range
    return (f"({d} >= {_to_date(r.start)} AND {d} <= {_to_date(r.end)}) AND "
            f"({t} >= {_to_datetime(r.start)} AND {t} <= {_to_datetime(r.end)})")


MACROS["dateTimeFilter"] = _date_time_filter
MACROS["dt"] = _date_time_filter
# Names the SDK or newer plugin releases define differently from the release pinned here.
NOT_EMULATED = ("timeFrom", "timeTo", "timeGroup", "table", "column", "columns", "rateColumns",
                "perSecondColumns", "adHocFilters", "interval", "interval_ms")


def _parse_args(text: str) -> tuple[list[str] | None, int]:
    """sqlutil.parseArgs: (args, length) when `(` comes first, (None, 0) otherwise, length -1 if unclosed."""
    if not text.startswith("("):
        return None, 0
    args: list[str] = []
    depth = 0
    arg: list[str] = []
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
            if depth == 1:
                continue
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append("".join(arg).strip())
                return args, i + 1
        elif ch == "," and depth == 1:
            args.append("".join(arg).strip())
            arg = []
            continue
        arg.append(ch)
    return None, -1


def interpolate_macros(sql: str, ctx: QueryContext) -> str:
    for name in NOT_EMULATED:
        if re.search(rf"\$__{name}\b", sql):
            raise NotEmulated(f"macro $__{name}")
    for name, macro in MACROS.items():
        matches: list[tuple[str, list[str]]] = []
        for m in re.finditer(rf"\$__{name}\b", sql):
            args, length = _parse_args(sql[m.end():])
            if length < 0:
                raise ValueError("failed to parse macro arguments (missing close bracket?)")
            matches.append((sql[m.start():m.end() + length], args or []))
        for full, args in matches:
            sql = sql.replace(full, macro(ctx, args))
    return sql


# ---------------------------------------------------------------- the whole path


@dataclass
class Expansion:
    """Everything Grafana knows when it sends a panel's query."""

    time_range: TimeRange
    interval_ms: int
    variables: dict[str, Variable] = field(default_factory=dict)

    def builtins(self) -> dict[str, str]:
        r = self.time_range
        return {
            "__interval": _grafana_interval_text(self.interval_ms),
            "__interval_ms": str(self.interval_ms),
            "__from": str(int(r.start.timestamp() * 1000)),
            "__to": str(int(r.end.timestamp() * 1000)),
        }

    def expand(self, raw_sql: str) -> str:
        sql = apply_conditional_all(raw_sql, self.variables)
        sql = replace_variables(sql, self.variables, self.builtins())
        sql = interpolate_macros(sql, QueryContext(self.time_range, self.interval_ms))
        leftover = re.search(r"\$\{?\w+", sql)
        if leftover:
            raise NotEmulated(f"unexpanded reference {leftover.group(0)!r} in:\n{sql}")
        return sql


def _grafana_interval_text(ms: int) -> str:
    """rangeutil.secondsToHms for the common cases (what `$__interval` becomes)."""
    for unit, size in (("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def resolve_variables(
    definitions: Sequence[Mapping[str, object]],
    selection: Mapping[str, Sequence[str]],
    run_query: Callable[[str], list[tuple[object, ...]]],
    time_range: TimeRange,
) -> dict[str, Variable]:
    """Grafana's variable refresh: run each query variable in dashboard order with the selections
    made so far (cascading), take column 0 as value (column 1 as text), then apply `selection`
    (variables not named there are "All"). A selected value must be one of the options."""
    variables: dict[str, Variable] = {}
    for d in definitions:
        if d.get("type") != "query":
            raise NotEmulated(f"variable type {d.get('type')!r}")
        if d.get("allValue"):
            raise NotEmulated("custom all value")
        name = str(d["name"])
        query = d["query"]
        sql = query if isinstance(query, str) else str(query.get("rawSql", ""))  # type: ignore[union-attr]
        rows = run_query(Expansion(time_range, 1000, variables).expand(sql))
        options = tuple(str(r[0]) for r in rows)
        chosen = tuple(selection.get(name, (ALL,)))
        if chosen != (ALL,):
            unknown = [v for v in chosen if v not in options]
            if unknown:
                raise ValueError(f"${name}: {unknown} not among the options {options[:10]}...")
            if len(chosen) > 1 and not d.get("multi"):
                raise ValueError(f"${name} is single-valued")
        elif not d.get("includeAll"):
            raise ValueError(f"${name} has no All option")
        variables[name] = Variable(name, chosen, options)
    return variables
