"""Computing the Decision 766 service index in ClickHouse from the daily rollups (`service_index`).

One INSERT ... SELECT recomputes every day of the rollups (or the days from `since`): the counts per
unit and day (agencies from `daily_filings`; the service centers' ratings from `daily_service_center`,
an agency's being those of the centers at its level in its commune, the provincial center's for the
provincial departments), the same counts summed month-to-date, the shares and group scores of
`models.service_index`, the ranking. Weights are bound parameters.
"""

from __future__ import annotations

from datetime import date

from clickhouse_connect.driver.client import Client

from models.service_index import IndexWeights, load_index_weights

COUNTS = ("submitted", "submitted_online", "paid_online", "digitised", "reused_data", "processed", "on_time",
          "result_issued", "electronic", "rating_count", "rating_sum")
SHARE_SQL = {
    "electronic_results": "electronic / nullIf(result_issued, 0)",
    "on_time": "on_time / nullIf(processed, 0)",
    "online_application": "submitted_online / nullIf(submitted, 0)",
    "online_payment": "paid_online / nullIf(submitted, 0)",
    "satisfaction": "(rating_sum / nullIf(rating_count, 0) - 1) / 3",
    "digitised": "digitised / nullIf(submitted, 0)",
    "reused_data": "reused_data / nullIf(submitted, 0)",
}

_UNIT_COUNTS = """
filings AS (
    SELECT f.day AS day, f.agency_code AS agency_code, a.level AS level, ifNull(a.commune_code, '') AS commune,
           a.province_code AS province, {filing_sums}
    FROM daily_filings AS f INNER JOIN dim_agencies AS a ON a.agency_code = f.agency_code
    WHERE f.day >= {{since:Date}}
    GROUP BY day, agency_code, level, commune, province
),
ratings AS (
    SELECT s.day AS day, c.level AS level, ifNull(c.commune_code, '') AS commune,
           sum(s.rating_count) AS rating_count, sum(s.rating_sum) AS rating_sum
    FROM daily_service_center AS s INNER JOIN dim_centers AS c ON c.center_id = s.center_id
    WHERE s.day >= {{since:Date}}
    GROUP BY day, level, commune
),
agencies AS (SELECT agency_code, level, ifNull(commune_code, '') AS commune, province_code FROM dim_agencies),
rows AS (
    SELECT day, 'agency' AS unit_level, agency_code AS unit_code, {filing_cols}, 0 AS rating_count,
           0 AS rating_sum FROM filings
    UNION ALL
    SELECT day, 'commune', commune, {filing_cols}, 0, 0 FROM filings WHERE level = 'commune'
    UNION ALL
    SELECT day, 'province', province, {filing_cols}, 0, 0 FROM filings
    UNION ALL
    SELECT r.day, 'agency', a.agency_code, {zeros}, r.rating_count, r.rating_sum
    FROM ratings AS r INNER JOIN agencies AS a ON a.level = r.level AND a.commune = r.commune
    UNION ALL
    SELECT day, 'commune', commune, {zeros}, rating_count, rating_sum FROM ratings WHERE level = 'commune'
    UNION ALL
    SELECT day, 'province', (SELECT any(province_code) FROM dim_agencies), {zeros}, rating_count, rating_sum
    FROM ratings
),
daily AS (SELECT day, unit_level, unit_code, {count_sums} FROM rows GROUP BY day, unit_level, unit_code),
last_day AS (SELECT max(day) AS d FROM daily),
periods AS (
    SELECT 'day' AS period, day, unit_level, unit_code, {count_cols} FROM daily
    UNION ALL
    SELECT 'mtd', arrayJoin(arrayFilter(x -> x <= (SELECT d FROM last_day), arrayMap(i -> day + i,
                                        range(toUInt32(toLastDayOfMonth(day) - day) + 1)))) AS upto,
           unit_level, unit_code, {count_sums}
    FROM daily GROUP BY upto, unit_level, unit_code
)"""


def _group_sql(weights: IndexWeights) -> tuple[str, str]:
    """(the five group scores as columns, the total) as SQL over the count columns. Group and share names
    are validated against `GROUPS` and `SHARE_SQL`; their numbers are bound (`index_parameters`)."""
    groups, total_num, total_den = [], [], []
    for g in weights.groups:
        num = " + ".join(f"{{w_{g.name}_{s}:Float64}} * ifNull({SHARE_SQL[s]}, 0)" for s, _ in g.parts)
        den = " + ".join(f"{{w_{g.name}_{s}:Float64}} * ({SHARE_SQL[s]} IS NOT NULL)" for s, _ in g.parts)
        groups.append(f"if(({den}) > 0, {{points_{g.name}:Float64}} * ({num}) / ({den}), NULL) AS {g.name}")
        total_num.append(f"ifNull({g.name}, 0)")
        total_den.append(f"{{points_{g.name}:Float64}} * ({g.name} IS NOT NULL)")
    total = f"if(({' + '.join(total_den)}) > 0, 100 * ({' + '.join(total_num)}) / ({' + '.join(total_den)}), NULL)"
    return ",\n       ".join(groups), total


def index_parameters(weights: IndexWeights, since: date) -> dict[str, object]:
    """The values `index_sql` binds: the first day recomputed, each group's points and share weights."""
    params: dict[str, object] = {"since": since}
    for g in weights.groups:
        params[f"points_{g.name}"] = g.points
        params.update({f"w_{g.name}_{s}": w for s, w in g.parts})
    return params


def index_sql(weights: IndexWeights) -> str:
    """The SELECT giving every `service_index` row (parameters: `index_parameters`)."""
    filing_counts = COUNTS[:9]
    ctes = _UNIT_COUNTS.format(
        filing_sums=", ".join(f"sum(f.{c}) AS {c}" for c in filing_counts),
        filing_cols=", ".join(filing_counts), zeros=", ".join(f"0 AS {c}" for c in filing_counts),
        count_sums=", ".join(f"sum({c}) AS {c}" for c in COUNTS), count_cols=", ".join(COUNTS))
    groups, total = _group_sql(weights)
    return f"""WITH {ctes},
scored AS (
    SELECT period, day, unit_level, unit_code,
       {groups},
       {total} AS total, submitted AS dossiers, rating_count AS ratings
    FROM periods
)
SELECT period, day, unit_level, unit_code, transparency, progress, online, satisfaction, digitisation, total,
       toUInt32(rank() OVER (PARTITION BY period, day, unit_level ORDER BY ifNull(total, -1) DESC)) AS rank,
       toUInt32(count() OVER (PARTITION BY period, day, unit_level)) AS units,
       dossiers, toUInt64(ratings) AS ratings, now64(3) AS computed_at
FROM scored"""


def refresh_service_index(client: Client, weights: IndexWeights | None = None, since: date | None = None) -> None:
    """Recompute the index for every day of the rollups from `since` (default: all). Month-to-date rows
    need the whole month: `since` is moved back to the first of its month."""
    weights = weights or load_index_weights()
    start = (since or date(1970, 1, 1)).replace(day=1)
    insert = "INSERT INTO rollup_service_index " + index_sql(weights)
    client.command(insert, parameters=index_parameters(weights, start))
