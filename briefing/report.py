"""Putting it together: open ClickHouse, bring the rollups up to date, load the day, render, write."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from clickhouse_connect.driver.exceptions import ClickHouseError

from briefing.data import load_briefing_data
from briefing.i18n import Lang
from briefing.render import render_page
from models.settings import Settings

log = logging.getLogger(__name__)


def covered_day(briefing_date: date) -> date:
    """A briefing dated D (read at 07:00 on D) is about the local day before."""
    return briefing_date - timedelta(days=1)


def build_briefing(dsn: str, briefing_date: date, lang: str, settings: Settings, *, scenario: str = "default",
                   generated: datetime | None = None) -> str:
    """The HTML of the briefing dated `briefing_date` (about the day before) in `lang` (vi or en)."""
    from simulators.scenario import load_scenario
    from sinks.client import connect
    from sinks.dsn import redact_dsn
    from sinks.rollups import refresh_rollups

    language = Lang(lang)  # fail on a bad language before touching ClickHouse
    loaded = load_scenario(scenario)
    try:
        client = connect(dsn, settings)
    except ClickHouseError as exc:  # unreachable server, unknown database: one line for the command
        raise ValueError(f"cannot open ClickHouse at {redact_dsn(dsn)}: {str(exc).strip().splitlines()[0]}") from exc
    try:
        if not int(client.command("EXISTS TABLE daily_filings") or 0):
            raise ValueError(f"no IOC tables in {redact_dsn(dsn)}: run `ioc db migrate` (or `ioc demo`) first")
        try:
            refresh_rollups(client)
        except ClickHouseError as exc:  # e.g. a read-only user: the scheduled refresh is at most 5 min old
            log.warning("could not refresh the daily rollups (%s); using them as they are", exc)
        data = load_briefing_data(client, covered_day(briefing_date), loaded.province)
    finally:
        client.close()
    return render_page(data, language, loaded.targets, generated=generated or datetime.now(UTC),
                       scenario=loaded.name)


def write_briefing(dsn: str, briefing_date: date, lang: str, out: Path, settings: Settings, *,
                   scenario: str = "default") -> Path:
    html = build_briefing(dsn, briefing_date, lang, settings, scenario=scenario)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out
