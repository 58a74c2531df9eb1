"""Small hand-written SVG charts (no JavaScript, no fonts to fetch): they print as sharply as the text.

A chart is a fixed viewBox with 24 hourly slots; every bar or point carries a <title> with its value
(a tooltip on screen, and the figures stay in the HTML for the tests to find).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 22.0, 4.0, 6.0, 12.0
GRID = "#d8dde3"
INK = "#4a5561"


def _frame(width: float, height: float, body: list[str], y_labels: Sequence[tuple[float, str]],
           slots: int, label: str) -> str:
    """Axes, light grid lines at the given y positions, hour ticks every 6 slots."""
    plot_w = width - PAD_LEFT - PAD_RIGHT
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:g} {height:g}" role="img" '
             f'aria-label="{escape(label)}" class="chart">']
    for y, text in y_labels:
        parts.append(f'<line x1="{PAD_LEFT:g}" x2="{width - PAD_RIGHT:g}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="{GRID}" stroke-width="0.5"/>')
        parts.append(f'<text x="{PAD_LEFT - 2:g}" y="{y + 2.5:.1f}" text-anchor="end" font-size="7" '
                     f'fill="{INK}">{escape(text)}</text>')
    base = height - PAD_BOTTOM
    parts.append(f'<line x1="{PAD_LEFT:g}" x2="{width - PAD_RIGHT:g}" y1="{base:g}" y2="{base:g}" '
                 f'stroke="{INK}" stroke-width="0.6"/>')
    for hour in range(0, slots + 1, 6):
        x = PAD_LEFT + plot_w * hour / slots
        parts.append(f'<text x="{x:.1f}" y="{height - 3:g}" text-anchor="middle" font-size="7" '
                     f'fill="{INK}">{hour}</text>')
    parts.extend(body)
    parts.append("</svg>")
    return "".join(parts)


def nice_max(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 5 x 10^k)."""
    if value <= 0:
        return 1.0
    scale = 1.0
    while scale * 10 <= value:
        scale *= 10
    while scale > value:
        scale /= 10
    for step in (1, 2, 5, 10):
        if step * scale >= value:
            return step * scale
    return 10 * scale


def stacked_bars(series: Sequence[tuple[Sequence[float], str]], titles: Sequence[str], *, label: str,
                 width: float = 180, height: float = 64, fmt: Callable[[float], str] = lambda v: f"{v:g}") -> str:
    """Bars per slot, the series stacked bottom-up in the given colours."""
    slots = len(titles)
    totals = [sum(s[0][i] for s in series) for i in range(slots)]
    top = nice_max(max(totals, default=0))
    plot_w, plot_h = width - PAD_LEFT - PAD_RIGHT, height - PAD_TOP - PAD_BOTTOM
    slot_w = plot_w / slots
    base = height - PAD_BOTTOM
    body = []
    for i in range(slots):
        y = base
        x = PAD_LEFT + i * slot_w + slot_w * 0.12
        body.append(f"<g><title>{escape(titles[i])}</title>")
        for values, color in series:
            h = plot_h * values[i] / top
            if h > 0:
                y -= h
                body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot_w * 0.76:.1f}" height="{h:.1f}" '
                            f'fill="{color}"/>')
        body.append("</g>")
    return _frame(width, height, body, [(PAD_TOP, fmt(top)), (PAD_TOP + plot_h / 2, fmt(top / 2))], slots, label)


def line(values: Sequence[float | None], titles: Sequence[str], *, label: str, color: str,
         low: float | None = None, high: float | None = None, reference: float | None = None,
         width: float = 180, height: float = 64, fmt: Callable[[float], str] = lambda v: f"{v:g}") -> str:
    """A line through the slots that have a value (gaps where None), a dot per value, an optional
    dashed reference line (a target)."""
    known = [v for v in values if v is not None]
    low = min([*known, *([reference] if reference is not None else [])], default=0.0) if low is None else low
    high = nice_max(max([*known, *([reference] if reference is not None else [])], default=1.0)) \
        if high is None else high
    if high <= low:
        high = low + 1.0
    slots = len(values)
    plot_w, plot_h = width - PAD_LEFT - PAD_RIGHT, height - PAD_TOP - PAD_BOTTOM

    def xy(i: int, v: float) -> tuple[float, float]:
        clipped = min(max(v, low), high)
        return PAD_LEFT + plot_w * (i + 0.5) / slots, PAD_TOP + plot_h * (1 - (clipped - low) / (high - low))

    body = []
    if reference is not None:
        _, y = xy(0, reference)
        body.append(f'<line x1="{PAD_LEFT:g}" x2="{width - PAD_RIGHT:g}" y1="{y:.1f}" y2="{y:.1f}" '
                    f'stroke="#c0392b" stroke-width="0.6" stroke-dasharray="2 2"/>')
    run: list[str] = []
    for i, v in enumerate([*values, None]):
        if v is None:
            if len(run) > 1:
                body.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{color}" '
                            f'stroke-width="1.2"/>')
            run = []
            continue
        x, y = xy(i, v)
        run.append(f"{x:.1f},{y:.1f}")
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="1.1" fill="{color}"><title>{escape(titles[i])}'
                    f"</title></circle>")
    return _frame(width, height, body, [(PAD_TOP, fmt(high)), (PAD_TOP + plot_h, fmt(low))], slots, label)


def sparkline(values: Sequence[float | None], *, low: float, high: float, color: str, label: str,
              width: float = 70, height: float = 14) -> str:
    """A bare line (no axes) for a table cell; None values are gaps."""
    slots = len(values)
    points: list[list[str]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            points.append([])
            continue
        clipped = min(max(v, low), high)
        x = width * (i + 0.5) / slots
        y = 1 + (height - 2) * (1 - (clipped - low) / ((high - low) or 1.0))
        points[-1].append(f"{x:.1f},{y:.1f}")
    lines = "".join(f'<polyline points="{" ".join(p)}" fill="none" stroke="{color}" stroke-width="1"/>'
                    for p in points if len(p) > 1)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:g} {height:g}" class="spark" role="img" '
            f'aria-label="{escape(label)}">{lines}</svg>')
