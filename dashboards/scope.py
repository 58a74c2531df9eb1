"""Template variables (province / commune / agency / center) and the SQL that scopes a query by them.

Every filter goes through `$__conditionalAll(cond, $var)` so that "All" becomes `1=1` instead of a
list of every option. That alone would be wrong for cascading variables: with commune = X and
center = All, `$__conditionalAll(center_id IN (...), $center)` drops the center filter entirely
and the commune's choice is lost. So each scope filters on every level of the hierarchy at once,
inside one `IN (SELECT ... FROM dim_...)` over the (small) dimension table.

Variables use the plugin's two-column convention: column 1 is the value, column 2 the label.
Values are interpolated with `:singlequote` (each value quoted, `'` escaped), never bare.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import QueryVariable
from grafana_foundation_sdk.models.dashboard import VariableOption, VariableRefresh, VariableSort

from dashboards.datasource import ref


def cond_all(condition: str, var: str) -> str:
    """The plugin macro: `condition` unless `$var` is All (or empty). `var` is a plain name."""
    return f"$__conditionalAll({condition}, ${var})"


def quoted(var: str) -> str:
    return "${" + var + ":singlequote}"


PROVINCE_OF_COMMUNE = cond_all(f"province_code IN ({quoted('province')})", "province")
IN_COMMUNE = cond_all(f"commune_code IN ({quoted('commune')})", "commune")
IN_AGENCY = cond_all(f"agency_code IN ({quoted('agency')})", "agency")
IN_CENTER = cond_all(f"center_id IN ({quoted('center')})", "center")
# A province-level center has no commune; models/reference.py names it `<province>-HCC`.
CENTER_IN_PROVINCE = cond_all(
    f"(commune_code IN (SELECT commune_code FROM dim_communes WHERE province_code IN ({quoted('province')})) "
    f"OR (commune_code IS NULL AND arrayExists(p -> startsWith(center_id, concat(p, '-')), [{quoted('province')}])))",
    "province",
)
# Core nodes have no agency: they belong to the province, and drop out once a commune or agency is chosen.
NODE_IN_PROVINCE = cond_all(
    "(agency_code IS NULL OR agency_code IN "
    f"(SELECT agency_code FROM dim_agencies WHERE province_code IN ({quoted('province')})))",
    "province",
)

PROVINCE_SQL = "SELECT province_code, name FROM dim_provinces ORDER BY province_code"
COMMUNE_SQL = f"SELECT commune_code, name FROM dim_communes WHERE {PROVINCE_OF_COMMUNE} ORDER BY commune_code"
AGENCY_SQL = (f"SELECT agency_code, name FROM dim_agencies WHERE {PROVINCE_OF_COMMUNE} AND {IN_COMMUNE} "
              "ORDER BY agency_code")
CENTER_SQL = f"SELECT center_id, name FROM dim_centers WHERE {CENTER_IN_PROVINCE} AND {IN_COMMUNE} ORDER BY center_id"


def center_scope(column: str = "center_id") -> str:
    """`column IN (centers selected by province, commune and center)`."""
    return (f"{column} IN (SELECT center_id FROM dim_centers "
            f"WHERE {CENTER_IN_PROVINCE} AND {IN_COMMUNE} AND {IN_CENTER})")


def agency_scope(column: str = "agency_code") -> str:
    """`column IN (agencies selected by province, commune and agency)`."""
    return (f"{column} IN (SELECT agency_code FROM dim_agencies "
            f"WHERE {PROVINCE_OF_COMMUNE} AND {IN_COMMUNE} AND {IN_AGENCY})")


def node_scope(column: str = "node_id") -> str:
    """`column IN (access nodes of the selected agencies, plus core nodes while no commune/agency is chosen)`."""
    return f"{column} IN (SELECT node_id FROM dim_nodes WHERE {NODE_IN_PROVINCE} AND {IN_COMMUNE} AND {IN_AGENCY})"


def _variable(name: str, label: str, sql: str) -> QueryVariable:
    return (
        QueryVariable(name)
        .label(label)
        .datasource(ref())
        .query(sql)
        .multi(True)
        .include_all(True)
        .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(VariableSort.DISABLED)
        .current(VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def province_var() -> QueryVariable:
    return _variable("province", "Province", PROVINCE_SQL)


def commune_var() -> QueryVariable:
    return _variable("commune", "Commune / ward", COMMUNE_SQL)


def agency_var() -> QueryVariable:
    return _variable("agency", "Agency", AGENCY_SQL)


def center_var() -> QueryVariable:
    return _variable("center", "Service center", CENTER_SQL)
