"""The briefing's SQL: every figure on the page comes from one of these parameterised queries.

Days are Vietnam local days, like the daily_* rollups (sinks/migrations/0006): `{day:Date}` selects a
rollup row, `{start}`/`{end}` bound the same day in UTC for the raw, aggregate and alert tables
(a plain range on the sorting key's time column, so ClickHouse prunes by index). Every table is
read deduplicated (FINAL, or the daily_* views that apply it), as sinks/README.md requires.
"""

from __future__ import annotations

LOCAL_TZ = "Asia/Ho_Chi_Minh"  # the rollups' day boundary; a constant of the schema, not event data
START = "{start:DateTime64(3, 'UTC')}"
END = "{end:DateTime64(3, 'UTC')}"

FILING_TOTALS = """
SELECT
    sum(submitted), sum(submitted_online), sum(paid_online), sum(digitised), sum(reused_data),
    sum(processed), sum(on_time), sum(late), sum(result_issued), sum(electronic), sum(rejected)
FROM daily_filings
WHERE day = {day:Date}
"""

SERVICE_TOTALS = """
SELECT
    count(), sum(issued), sum(called), sum(abandoned), sum(wait_count), sum(wait_sum),
    ioc_sketch_quantile(sumMap(wait_sketch), 0.9)
FROM daily_service_center
WHERE day = {day:Date}
"""

NETWORK_NODES = """
SELECT node_id, samples, up_samples, availability, outages, outage_minutes
FROM daily_network
WHERE day = {day:Date}
ORDER BY node_id
"""

AGENCY_FILINGS = """
SELECT agency_code, sum(submitted), sum(submitted_online), sum(processed), sum(on_time), sum(late)
FROM daily_filings
WHERE day = {day:Date}
GROUP BY agency_code
ORDER BY agency_code
"""

# Dossiers still open at the end of the day: submitted (with a due time) before it ends and neither
# processed nor rejected by then. The run's backlog (processed dossiers whose submission predates the
# data) has no `submitted` row, so it never looks open.
OPEN_DOSSIERS = f"""
SELECT
    s.agency_code AS agency_code,
    countIf(s.due_time >= {START} AND s.due_time < {END}) AS overdue,
    countIf(s.due_time >= {END} AND s.due_time < {END} + INTERVAL 1 DAY) AS due_soon
FROM raw_filings AS s FINAL
WHERE s.kind = 'submitted' AND s.due_time IS NOT NULL AND s.event_time < {END}
  AND s.dossier_id NOT IN (
      SELECT dossier_id FROM raw_filings FINAL
      WHERE kind IN ('processed', 'rejected') AND event_time < {END}
  )
GROUP BY agency_code
HAVING overdue > 0 OR due_soon > 0
ORDER BY agency_code
"""

CENTER_DAYS = """
SELECT center_id, issued, called, abandoned, wait_count, wait_sum, wait_p90
FROM daily_service_center
WHERE day = {day:Date}
ORDER BY center_id
"""

OUTAGES = f"""
SELECT node_id, `start`, `end`, duration_s
FROM network_outages FINAL
WHERE `start` < {END} AND `end` > {START}
ORDER BY `start`, node_id
"""

# Incidents (streams/incidents.py) that were open at some point of the day, latest version each.
DAY_INCIDENTS = f"""
SELECT incident_id, severity, family, subject, title, `start`, `end`, length(subjects), length(communes),
       dateDiff('second', `start`, detected_at), has(rules, 'loss_high') AND NOT has(rules, 'node_down')
FROM incidents_current
WHERE `start` < {END} AND (`end` IS NULL OR `end` > {START})
ORDER BY indexOf(['critical', 'warning', 'info'], severity), `start`, incident_id
"""

HOURLY_FILINGS = f"""
SELECT toHour(window_start, '{LOCAL_TZ}') AS h, sumIf(submitted, channel != 'in_person'),
       sumIf(submitted, channel = 'in_person')
FROM agg_filings FINAL
WHERE window_start >= {START} AND window_start < {END}
GROUP BY h
ORDER BY h
"""

HOURLY_WAIT = f"""
SELECT toHour(window_start, '{LOCAL_TZ}') AS h, ioc_sketch_quantile(sumMap(wait_sketch), 0.9)
FROM agg_service_center FINAL
WHERE window_start >= {START} AND window_start < {END}
GROUP BY h
ORDER BY h
"""

HOURLY_NETWORK = f"""
SELECT toHour(window_start, '{LOCAL_TZ}') AS h, sum(up_samples) / nullIf(sum(samples), 0)
FROM agg_network FINAL
WHERE window_start >= {START} AND window_start < {END}
GROUP BY h
ORDER BY h
"""

HOURLY_NODES = f"""
SELECT node_id, toHour(window_start, '{LOCAL_TZ}') AS h, sum(up_samples) / nullIf(sum(samples), 0)
FROM agg_network FINAL
WHERE window_start >= {START} AND window_start < {END} AND node_id IN {{nodes:Array(String)}}
GROUP BY node_id, h
ORDER BY node_id, h
"""

HOURLY_INCIDENTS = f"""
SELECT h, countIf(severity = 'critical'), countIf(severity != 'critical')
FROM (
    SELECT severity, arrayJoin(range(toHour(greatest(`start`, {START}), '{LOCAL_TZ}'),
                                     toHour(least(ifNull(`end`, {END}), {END}) - INTERVAL 1 MILLISECOND,
                                            '{LOCAL_TZ}') + 1)) AS h
    FROM incidents_current
    WHERE `start` < {END} AND (`end` IS NULL OR `end` > {START})
)
GROUP BY h
ORDER BY h
"""

PROVINCES = "SELECT province_code, name, name_en FROM dim_provinces ORDER BY province_code"
AGENCIES = "SELECT agency_code, name, name_en, level, commune_code FROM dim_agencies ORDER BY agency_code"
COMMUNES = "SELECT commune_code, name FROM dim_communes ORDER BY commune_code"
CENTERS = "SELECT center_id, name, level, commune_code FROM dim_centers ORDER BY center_id"
NODES = "SELECT node_id, role, agency_code, commune_code FROM dim_nodes ORDER BY node_id"

# The Decision 766 index (sinks/service_index.py): the province's rows for the day and the comparisons.
INDEX_PROVINCE = """
SELECT period, day, total
FROM service_index
WHERE unit_level = 'province' AND day IN {days:Array(Date)}
"""

INDEX_TREND = """
SELECT day, total
FROM service_index
WHERE unit_level = 'province' AND period = 'day' AND day > {day:Date} - 28 AND day <= {day:Date}
ORDER BY day
"""

# Communes month to date, lowest first; and their day against the same weekday a week before.
INDEX_COMMUNES = """
SELECT m.unit_code, m.total, d.total, w.total
FROM (SELECT unit_code, total FROM service_index
      WHERE period = 'mtd' AND unit_level = 'commune' AND day = {day:Date}) AS m
LEFT JOIN (SELECT unit_code, total FROM service_index
           WHERE period = 'day' AND unit_level = 'commune' AND day = {day:Date}) AS d ON d.unit_code = m.unit_code
LEFT JOIN (SELECT unit_code, total FROM service_index
           WHERE period = 'day' AND unit_level = 'commune' AND day = {day:Date} - 7) AS w ON w.unit_code = m.unit_code
ORDER BY m.unit_code
SETTINGS join_use_nulls = 1
"""
