"""The leaders' morning briefing: one printable A4 page about yesterday, in Vietnamese or English.

    ioc briefing --date 2025-07-15 --lang vi --out var/briefing.html   # covers 2025-07-14

Figures come only from ClickHouse (`briefing.queries`, read by `briefing.data`); targets are
configuration (the scenario's [targets]); `briefing.figures` judges, `briefing.render` writes HTML
with inline SVG charts from one template and the translation table of `briefing.i18n`.
"""

from __future__ import annotations

from briefing.report import build_briefing, write_briefing

__all__ = ["build_briefing", "write_briefing"]
