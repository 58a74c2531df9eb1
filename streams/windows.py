"""The windowing API, one import for the specs, the worker and the tests; it lives in three modules:

- `streams.window_spec`: the declarations (`WindowSpec`, windowings, inputs, aggregates) and outputs (`Emitted`);
- `streams.window_state`: the per-window slot arrays and sketch buffers;
- `streams.window_engine`: `WindowEngine`, its time model, and its checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence

from streams.sessions import SessionSpec
from streams.window_engine import WindowEngine
from streams.window_spec import (
    LATE_SCHEMA,
    Count,
    Derived,
    Emitted,
    Flag,
    Is,
    Max,
    Min,
    Number,
    Quantile,
    Ratio,
    SketchMap,
    Sum,
    Windowing,
    WindowSpec,
    hopping,
    tumbling,
)

# Engines pickled before compact snapshots (format 1, still restored) name these classes here.
from streams.window_state import _Plan, _SketchBuffer, _Slots  # noqa: F401

# Checkpoints pickle an engine and its spec, which name their classes by module. They keep naming this
# module, as before the split into three: a checkpoint stays readable by workers of either version (a
# rolling upgrade, a rollback). The worker always imports this module (streams.pipeline does).
for _pickled in (WindowEngine, WindowSpec, Windowing, Is, Flag, Number, Derived,
                 Count, Sum, Min, Max, Quantile, SketchMap, Ratio):
    _pickled.__module__ = __name__

__all__: Sequence[str] = (
    "LATE_SCHEMA", "Count", "Derived", "Emitted", "Flag", "Is", "Max", "Min", "Number", "Quantile", "Ratio",
    "SessionSpec", "SketchMap", "Sum", "WindowEngine", "WindowSpec", "Windowing", "hopping", "tumbling",
)
