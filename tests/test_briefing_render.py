"""The briefing with a week to compare with, and the page as a browser draws it.

`weeks_dsn`: a database of its own in the session's chDB store holding the simulated 2025-07-14
(copied from `day_dsn`) and a second Monday, 2025-07-07 (another seed, filings and service centers
only), run through the worker's own pipelines: the briefing dated 2025-07-15 then has "a week
earlier" to compare with. Headless Chromium (Debian's `chromium`, `make system-tools`) renders the page
to a PNG, which must not be blank, and prints it to PDF, which must be one A4 page even with every
list at its cap.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clickhouse_connect.driver.client import Client

from briefing import figures as fig
from briefing.data import BriefingData, FilingTotals, load_briefing_data
from briefing.i18n import Lang
from briefing.render import Names, render_page
from models.settings import Settings
from sinks.client import connect
from sinks.dsn import dsn_database

DAY = date(2025, 7, 14)
WEEK_BEFORE = DAY - timedelta(days=7)
TZ = "Asia/Ho_Chi_Minh"
GENERATED = datetime(2025, 7, 15, 0, 0, tzinfo=UTC)
DATABASE = "briefing_weeks"
COPIED = ("raw_filings", "agg_filings", "agg_service_center", "agg_network", "network_outages", "incidents")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


@pytest.fixture(scope="module")
def weeks_dsn(chdb_store: Path, day_dsn: str) -> Iterator[str]:
    from simulators.generate import generate
    from sinks.migrate import migrate
    from sinks.rollups import refresh_rollups
    from sinks.writer import ClickHouseWriter
    from streams.signals import process_offline

    settings = Settings()
    dsn = f"chdb://{chdb_store}?database={DATABASE}"
    migrate(dsn, settings)
    source = dsn_database(day_dsn)
    client = connect(dsn, settings)
    try:
        for table in COPIED:  # names are constants; the day as the worker left it, deduplicated
            client.command(f"INSERT INTO {DATABASE}.{table} SELECT * FROM {source}.{table} FINAL")
        tables = generate("default", WEEK_BEFORE, 24, seed=11, families=["filings", "service_center"])
        with ClickHouseWriter(dsn, settings) as writer:
            for out in process_offline(tables, settings):
                writer.add_many([(t, rows) for t, rows in out.rows if rows.num_rows])
            writer.flush()
        refresh_rollups(client)
        yield dsn
    finally:
        client.command(f"DROP DATABASE IF EXISTS {DATABASE}")
        client.close()


@pytest.fixture(scope="module")
def client(weeks_dsn: str) -> Iterator[Client]:
    c = connect(weeks_dsn, Settings())
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def data(client: Client) -> BriefingData:
    return load_briefing_data(client, DAY)


def sql(client: Client, query: str, day: date, **params: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in client.query(query, parameters={"day": day.isoformat(), **params}).result_rows]


def normal(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------- a week earlier


def test_week_before_figures_equal_the_raw_events(client: Client, data: BriefingData,
                                                  targets: dict[str, float]) -> None:
    row, = sql(client, f"""
        SELECT countIf(kind = 'submitted'), countIf(kind = 'submitted' AND channel != 'in_person'),
               countIf(kind = 'submitted' AND paid_online), countIf(kind = 'submitted' AND digitised),
               countIf(kind = 'submitted' AND reused_data), countIf(kind = 'processed'),
               countIf(kind = 'processed' AND on_time), countIf(kind = 'processed' AND NOT on_time),
               countIf(kind = 'result_issued'), countIf(kind = 'result_issued' AND electronic),
               countIf(kind = 'rejected')
        FROM raw_filings FINAL WHERE toDate(event_time, '{TZ}') = {{day:Date}}""", WEEK_BEFORE)
    before = FilingTotals(*row)
    assert data.week_before.filings == before and before.submitted > 1000
    (called, abandoned, wait_sum), = sql(client, f"""
        SELECT countIf(kind = 'called'), countIf(kind = 'abandoned'), sumIf(wait_s, kind = 'called')
        FROM raw_service_center FINAL WHERE toDate(event_time, '{TZ}') = {{day:Date}}""", WEEK_BEFORE)
    previous = before.rates() | {"abandonment": abandoned / (abandoned + called),
                                 "mean_wait_min": wait_sum / called / 60}
    now = data.day.filings.rates() | {"abandonment": data.day.service.abandonment,
                                      "mean_wait_min": data.day.service.mean_wait_min}
    for lang in ("vi", "en"):
        lg = Lang(lang)
        page = render_page(data, lg, targets, generated=GENERATED)
        for key in (*fig.HEADLINE, "abandonment", "mean_wait_min"):
            card = normal(re.search(rf'data-kpi="{key}".*?</div></div>', page, re.S).group(0))  # type: ignore[union-attr]
            card = normal(unescape(re.sub(r"<[^>]+>", " ", card)))
            if key == "mean_wait_min":
                shown = (lg.minutes(previous[key]), lg.signed(now[key] - previous[key], lg.minutes))  # type: ignore[operator]
            else:
                shown = (lg.percent(previous[key]), lg.points(now[key] - previous[key]))  # type: ignore[operator]
            assert normal(f"{lg.t('week_before')}: {shown[0]}") in card and normal(shown[1]) in card, (key, card)


def gaps(client: Client, day: date, level: str, targets: dict[str, float]) -> dict[str, float]:
    """Per agency of a level, the page's gap (points below the online and on-time targets) from raw SQL."""
    out = {}
    for code, submitted, online, processed, on_time in sql(client, f"""
            SELECT f.agency_code, countIf(f.kind = 'submitted'),
                   countIf(f.kind = 'submitted' AND f.channel != 'in_person'),
                   countIf(f.kind = 'processed'), countIf(f.kind = 'processed' AND f.on_time)
            FROM raw_filings AS f FINAL
            WHERE toDate(f.event_time, '{TZ}') = {{day:Date}}
              AND f.agency_code IN (SELECT agency_code FROM dim_agencies WHERE level = {{level:String}})
            GROUP BY f.agency_code""", day, level=level):
        judged = [max(0.0, targets[k] - n / d) for k, n, d in (("online_application", online, submitted),
                                                                ("on_time", on_time, processed)) if d >= 5]
        if judged:
            out[code] = sum(judged)
    return out


@pytest.mark.parametrize("level, section", [("commune", "communes"), ("province", "departments")])
def test_most_improved_equal_the_raw_events(client: Client, data: BriefingData, targets: dict[str, float],
                                            level: str, section: str) -> None:
    now, before = gaps(client, DAY, level, targets), gaps(client, WEEK_BEFORE, level, targets)
    better = {c: before[c] - now[c] for c in before if c in now and now[c] < before[c]}
    top = sorted(better, key=lambda c: (-better[c], c))[: fig.TOP]
    moves = fig.improved(data, level, targets)
    assert [m.code for m in moves] == top and len(top) == fig.TOP
    assert [g for m in moves for g in (m.gap_before, m.gap_now)] == pytest.approx([g for c in top
                                                                                  for g in (before[c], now[c])])
    for lang in ("vi", "en"):
        lg, names = Lang(lang), Names(data.dims, Lang(lang))
        page = render_page(data, lg, targets, generated=GENERATED)
        block = re.search(rf'data-section="{section}".*?</section>', page, re.S).group(0)  # type: ignore[union-attr]
        improved = block.split("</table>")[1]  # the second table of the block
        cells = [normal(unescape(re.sub(r"<[^>]+>", " ", c))) for c in re.findall(r"<td[^>]*>(.*?)</td>", improved)]
        expected = [normal(x) for c in top
                    for x in (names.agency(c), lg.pts(before[c]), lg.pts(now[c]), f"▲ {lg.pts(better[c])}")]
        assert cells == expected


# ---------------------------------------------------------------- the page in a browser


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("headless Chromium is not installed (`make system-tools` installs Debian's package)")
    return found


def run_chromium(tmp_path: Path, *args: str) -> None:
    profile = tmp_path / "chromium-profile"
    subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], check=True, timeout=180,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def png_pixels(path: Path) -> np.ndarray:
    """Decode an 8-bit RGB(A) non-interlaced PNG (what Chromium writes): height x width x channels."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        elif kind == b"IEND":
            break
    assert header is not None
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and interlace == 0 and color in (2, 6)
    bpp = 3 if color == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(chunks)), np.uint8).reshape(height, 1 + width * bpp)
    out = np.zeros((height, width * bpp), np.uint8)
    prev = np.zeros(width * bpp, np.int64)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int64)
        if kind == 0:
            cur = line
        elif kind == 1:  # Sub: running sum per channel
            cur = np.cumsum(line.reshape(width, bpp), axis=0).reshape(-1) % 256
        elif kind == 2:  # Up
            cur = (line + prev) % 256
        else:  # Average (3) and Paeth (4) depend on the byte just decoded: byte by byte
            cur_list, up = [0] * len(line), prev.tolist()
            for i, x in enumerate(line.tolist()):
                left = cur_list[i - bpp] if i >= bpp else 0
                if kind == 3:
                    cur_list[i] = (x + (left + up[i]) // 2) % 256
                else:
                    upleft = up[i - bpp] if i >= bpp else 0
                    p = left + up[i] - upleft
                    pa, pb, pc = abs(p - left), abs(p - up[i]), abs(p - upleft)
                    pred = left if pa <= pb and pa <= pc else (up[i] if pb <= pc else upleft)
                    cur_list[i] = (x + pred) % 256
            cur = np.array(cur_list, np.int64)
        out[y] = cur
        prev = cur
    return out.reshape(height, width, bpp)[:, :, :3]


def test_chromium_renders_a_non_blank_page(data: BriefingData, targets: dict[str, float], tmp_path: Path) -> None:
    html = tmp_path / "briefing-vi.html"
    html.write_text(render_page(data, Lang("vi"), targets, generated=GENERATED), encoding="utf-8")
    png = tmp_path / "briefing-vi.png"
    run_chromium(tmp_path, f"--screenshot={png}", "--window-size=1240,1754", html.as_uri())
    pixels = png_pixels(png)
    assert pixels.shape == (1754, 1240, 3)
    rgb = pixels.astype(np.int32)
    counts = np.bincount(((rgb[:, :, 0] << 16) | (rgb[:, :, 1] << 8) | rgb[:, :, 2]).ravel())
    colors, background = int((counts > 0).sum()), counts.max() / counts.sum()
    dark = int((rgb.sum(axis=2) < 300).sum())  # text, axes
    assert colors > 100 and background < 0.9 and dark > 20_000, (colors, background, dark)
    # the status colours of the page are there: red (below target) and green (met)
    assert ((pixels[:, :, 0] > 170) & (pixels[:, :, 1] < 80) & (pixels[:, :, 2] < 80)).sum() > 100
    assert ((pixels[:, :, 1] > 110) & (pixels[:, :, 0] < 60) & (pixels[:, :, 2] < 110)).sum() > 100


def test_service_index_section_equals_the_stored_index(client: Client, data: BriefingData,
                                                       targets: dict[str, float]) -> None:
    """The day and month to date against a week before, the trend, the lowest and most improved communes,
    in both languages (the index itself is checked against raw events in tests/test_service_index.py)."""
    got = {(p, d): t for p, d, t in sql(client, "SELECT period, day, total FROM service_index "
                                                "WHERE unit_level = 'province'", DAY)}
    ix = data.index
    assert ix.day == got[("day", DAY)] and ix.mtd == got[("mtd", DAY)] and ix.week_before == got[("day", WEEK_BEFORE)]
    assert [d for d, _ in ix.trend] == [WEEK_BEFORE, DAY]  # the store holds two days of the last four weeks
    lowest = sql(client, "SELECT unit_code, total FROM service_index WHERE period = 'mtd' AND unit_level = 'commune' "
                         "AND day = {day:Date} ORDER BY total, unit_code LIMIT 5", DAY)
    assert list(ix.lowest) == lowest
    gains = sql(client, """
        SELECT d.unit_code, d.total - w.total AS gain
        FROM (SELECT * FROM service_index WHERE period = 'day' AND unit_level = 'commune' AND day = {day:Date}) AS d
        INNER JOIN (SELECT * FROM service_index WHERE period = 'day' AND unit_level = 'commune'
                    AND day = {day:Date} - 7) AS w ON w.unit_code = d.unit_code
        WHERE gain > 0 ORDER BY gain DESC, d.unit_code LIMIT 5""", DAY)
    assert [c for c, _ in ix.improved] == [c for c, _ in gains] and ix.improved
    for lang in ("vi", "en"):
        lg = Lang(lang)
        html = render_page(data, lg, targets, generated=GENERATED)
        section = html[html.index('data-section="index"'):html.index("</section>", html.index('data-section="index"'))]
        assert lg.t("sec_index") in html and lg.decimal(ix.mtd, 1) in section and lg.t("index_improved") in section
        assert data.dims.communes[lowest[0][0]] in section


def crowded(data: BriefingData) -> BriefingData:
    """The same day with every capped list overflowing: more network incidents and incidents than fit."""
    incidents = data.incidents * (fig.MAX_INCIDENTS + 1)
    extra = tuple(replace(data.day_incidents[0], incident_id=f"extra-{n}") for n in range(fig.MAX_INCIDENT_ROWS))
    return replace(data, incidents=incidents, day_incidents=data.day_incidents + extra)


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_the_page_prints_on_one_a4_sheet(data: BriefingData, targets: dict[str, float], tmp_path: Path,
                                         lang: str) -> None:
    full = crowded(data)
    assert fig.improved(full, "commune", targets) and fig.improved(full, "province", targets)
    html = tmp_path / f"briefing-{lang}.html"
    html.write_text(render_page(full, Lang(lang), targets, generated=GENERATED), encoding="utf-8")
    pdf = tmp_path / f"briefing-{lang}.pdf"
    run_chromium(tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", html.as_uri())
    body = pdf.read_bytes()
    pages = re.findall(rb"/Type\s*/Page\b(?!s)", body)
    assert len(pages) == 1, f"{len(pages)} pages"
    box = re.search(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", body)
    assert box and [round(float(v)) for v in box.groups()] == [595, 842]  # A4 in points
