"""Reference data: province -> communes -> agencies, service centers, network nodes, procedures.

Counts follow the source documents for Quang Ngai after the 1 July 2025 merger (DESIGN.md s.2):
12 departments + 96 commune-level people's committees = 108 agencies on the electronic system,
2,184 digitised procedures (848 fully online, 1,336 partly online), 550 of them with no dossier
in three years. Names of communes and procedures are synthetic (the documents do not list them);
department names follow the two-level structure. Electronic identification codes follow the
`000.yy.zz.Hnn` shape of the national agency-code standard (Decision 958/QD-UBND assigns them).
Everything is deterministic: the same `ProvinceSpec` always yields the same tables.

Geography and network topology (for the wall's map and for grouping network incidents):
- every commune belongs to an *area*, one of the districts of the former Quang Ngai and Kon Tum
  provinces (the merger's territory); coordinates are APPROXIMATE: the area's real centroid (to
  ~0.01 deg) plus a deterministic jitter, because the communes are synthetic. Every located row
  says so in `geo_accuracy` ("approximate");
- the dedicated data network is a tree: two core nodes (CORE-01 in Quang Ngai city, CORE-02 in
  Kon Tum city), one aggregation node per area (AGG-nn) under the core of its side, and the access
  node of each agency (N-<agency code>) under its area's aggregation node (departments: under
  CORE-01). A node that goes down cuts off everything below it (`downstream`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

DEPARTMENTS = (
    ("Sở Nội vụ", "Department of Home Affairs"),
    ("Sở Tài chính", "Department of Finance"),
    ("Sở Tư pháp", "Department of Justice"),
    ("Sở Xây dựng", "Department of Construction"),
    ("Sở Công Thương", "Department of Industry and Trade"),
    ("Sở Nông nghiệp và Môi trường", "Department of Agriculture and Environment"),
    ("Sở Khoa học và Công nghệ", "Department of Science and Technology"),
    ("Sở Giáo dục và Đào tạo", "Department of Education and Training"),
    ("Sở Y tế", "Department of Health"),
    ("Sở Văn hóa, Thể thao và Du lịch", "Department of Culture, Sports and Tourism"),
    ("Sở Dân tộc và Tôn giáo", "Department of Ethnic and Religious Affairs"),
    ("Thanh tra tỉnh", "Provincial Inspectorate"),
)


# (area, latitude, longitude, core, communes): the districts before the 2025 reorganisation, with their
# approximate centroids; the first area holds the urban wards. Kon Tum's side hangs off CORE-02.
AREAS: tuple[tuple[str, float, float, str, int], ...] = (
    ("Quảng Ngãi", 15.121, 108.806, "CORE-01", 9),
    ("Bình Sơn", 15.295, 108.765, "CORE-01", 7),
    ("Sơn Tịnh", 15.155, 108.750, "CORE-01", 5),
    ("Tư Nghĩa", 15.090, 108.760, "CORE-01", 6),
    ("Nghĩa Hành", 15.000, 108.760, "CORE-01", 5),
    ("Mộ Đức", 14.955, 108.880, "CORE-01", 5),
    ("Đức Phổ", 14.810, 108.960, "CORE-01", 6),
    ("Ba Tơ", 14.765, 108.725, "CORE-01", 5),
    ("Sơn Hà", 15.035, 108.485, "CORE-01", 5),
    ("Trà Bồng", 15.250, 108.525, "CORE-01", 5),
    ("Lý Sơn", 15.380, 109.115, "CORE-01", 1),
    ("Kon Tum", 14.354, 108.008, "CORE-02", 5),
    ("Đăk Hà", 14.525, 107.925, "CORE-02", 5),
    ("Đăk Tô", 14.700, 107.830, "CORE-02", 4),
    ("Ngọc Hồi", 14.705, 107.640, "CORE-02", 4),
    ("Đăk Glei", 15.085, 107.735, "CORE-02", 5),
    ("Sa Thầy", 14.420, 107.790, "CORE-02", 5),
    ("Kon Plông", 14.680, 108.300, "CORE-02", 4),
    ("Kon Rẫy", 14.545, 108.220, "CORE-02", 5),
)
CORES = (("CORE-01", 15.118, 108.800), ("CORE-02", 14.350, 108.000))
PROVINCE_CENTER = (15.1214, 108.8044)  # the provincial public administrative service center, Quang Ngai city
GEO_ACCURACY = "approximate"


def aggregation_node(area_index: int) -> str:
    return f"AGG-{area_index + 1:02d}"


@dataclass(frozen=True)
class ProvinceSpec:
    code: str = "QNG"
    name: str = "Quảng Ngãi"
    name_en: str = "Quang Ngai"
    agency_code_suffix: str = "H55"
    departments: int = 12
    communes: int = 96
    wards: int = 9  # of the communes, how many are urban wards (phường)
    procedures: int = 2_184
    procedures_full_online: int = 848
    procedures_dormant: int = 550  # no dossier in three years
    commune_level_procedures: int = 384
    counters_province_center: int = 40
    # Commune centers are sized to their demand: counters per unit of relative weight (a commune of
    # average weight gets 2, the busiest ward 10), at least 2. That keeps the Monday-morning peak of the
    # default calibration (30 tickets a day on average, 10-minute services) under ~80% utilisation;
    # one size for all left the busiest wards queueing every morning, a standing problem, not an incident.
    counters_per_commune_weight: float = 1.75
    counters_commune_min: int = 2


@dataclass(frozen=True)
class Reference:
    """The dimension tables as Arrow tables (what the sink loads and the simulator samples)."""

    provinces: pa.Table
    communes: pa.Table
    agencies: pa.Table
    procedures: pa.Table
    centers: pa.Table
    nodes: pa.Table

    def tables(self) -> dict[str, pa.Table]:
        return {
            "dim_provinces": self.provinces,
            "dim_communes": self.communes,
            "dim_agencies": self.agencies,
            "dim_procedures": self.procedures,
            "dim_centers": self.centers,
            "dim_nodes": self.nodes,
        }


PROVINCES: dict[str, ProvinceSpec] = {"QNG": ProvinceSpec()}


def province_reference(province: str) -> Reference:
    """The reference data of a known province (scenarios and the incident engine name it by code)."""
    spec = PROVINCES.get(province)
    if spec is None:
        raise ValueError(f"unknown province {province!r}; known: {', '.join(PROVINCES)}")
    return build_reference(spec)


def commune_code(spec: ProvinceSpec, i: int) -> str:
    return f"{spec.code}-C{i:03d}"


def build_reference(spec: ProvinceSpec | None = None) -> Reference:
    spec = spec or ProvinceSpec()
    rng = np.random.default_rng(958)  # fixed: reference data must not vary with the scenario seed

    provinces = pa.table({"province_code": [spec.code], "name": [spec.name], "name_en": [spec.name_en]})

    commune_codes = [commune_code(spec, i) for i in range(1, spec.communes + 1)]
    commune_kinds = ["phuong" if i <= spec.wards else "xa" for i in range(1, spec.communes + 1)]
    commune_names = [
        f"Phường {i:02d}" if kind == "phuong" else f"Xã {i:02d}"
        for i, kind in enumerate(commune_kinds, start=1)
    ]
    # Rough population weights: wards are busier. Used for load distribution.
    weights = np.where(np.array(commune_kinds) == "phuong", 3.0, 1.0) * rng.lognormal(0.0, 0.35, spec.communes)
    # Its own random stream: placing communes on the map must not change any other table.
    geo = np.random.default_rng(959)
    area_of = _commune_areas(spec.communes)
    spread = np.where(np.array(commune_kinds) == "phuong", 0.015, 0.06)  # wards sit close to the city center
    commune_lat = np.array([AREAS[a][1] for a in area_of]) + geo.uniform(-1, 1, spec.communes) * spread
    commune_lon = np.array([AREAS[a][2] for a in area_of]) + geo.uniform(-1, 1, spec.communes) * spread
    communes = pa.table(
        {
            "commune_code": commune_codes,
            "province_code": [spec.code] * spec.communes,
            "name": commune_names,
            "kind": commune_kinds,
            "weight": weights / weights.sum(),
            "area": [AREAS[a][0] for a in area_of],
            "latitude": np.round(commune_lat, 4),
            "longitude": np.round(commune_lon, 4),
            "geo_accuracy": [GEO_ACCURACY] * spec.communes,
        }
    )

    dept_codes = [f"000.00.{d:02d}.{spec.agency_code_suffix}" for d in range(1, spec.departments + 1)]
    commune_agency_codes = [f"000.{c:02d}.00.{spec.agency_code_suffix}" for c in range(1, spec.communes + 1)]
    dept_names = [DEPARTMENTS[d % len(DEPARTMENTS)] for d in range(spec.departments)]
    agencies = pa.table(
        {
            "agency_code": dept_codes + commune_agency_codes,
            "name": [n for n, _ in dept_names] + [f"UBND {n}" for n in commune_names],
            "name_en": [e for _, e in dept_names] + [f"People's Committee of {n}" for n in commune_names],
            "level": ["province"] * spec.departments + ["commune"] * spec.communes,
            "province_code": [spec.code] * (spec.departments + spec.communes),
            "commune_code": [None] * spec.departments + commune_codes,
        }
    )

    n = spec.procedures
    ids = [f"{spec.code}-P{i:04d}" for i in range(1, n + 1)]
    online_mode = np.array(["partial"] * n, dtype=object)
    online_mode[rng.permutation(n)[: spec.procedures_full_online]] = "full"
    level = np.array(["province"] * n, dtype=object)
    level[rng.permutation(n)[: spec.commune_level_procedures]] = "commune"
    # Demand follows a heavy tail (a few procedures carry most dossiers); dormant ones get none.
    demand = rng.pareto(1.2, n) + 0.05
    demand[rng.permutation(n)[: spec.procedures_dormant]] = 0.0
    demand[level == "commune"] *= 6.0  # civil status, certification: the commune counters' bread and butter
    owner = np.where(level == "province", np.array(dept_codes, dtype=object)[np.arange(n) % spec.departments], "")
    procedures = pa.table(
        {
            "procedure_id": ids,
            "name": [f"Thủ tục {i:04d}" for i in range(1, n + 1)],
            "level": level.tolist(),
            "online_mode": online_mode.tolist(),
            "department_code": [o or None for o in owner.tolist()],
            "processing_days": rng.integers(1, 21, n).astype(np.int32),
            "demand_weight": demand / demand.sum(),
        }
    )

    relative_weight = communes.column("weight").to_numpy() * spec.communes  # 1.0 = an average commune
    commune_counters = np.maximum(spec.counters_commune_min,
                                  np.ceil(spec.counters_per_commune_weight * relative_weight)).astype(int)
    # A commune's center stands in the commune (a few hundred metres from its centroid).
    center_offset = geo.uniform(-0.004, 0.004, (2, spec.communes))
    centers = pa.table(
        {
            "center_id": [f"{spec.code}-HCC"] + [f"{c}-HCC" for c in commune_codes],
            "name": [f"Trung tâm Phục vụ hành chính công tỉnh {spec.name}"]
            + [f"Trung tâm Phục vụ hành chính công {n}" for n in commune_names],
            "level": ["province"] + ["commune"] * spec.communes,
            "commune_code": [None, *commune_codes],
            "counters": [spec.counters_province_center, *commune_counters.tolist()],
            "latitude": np.round([PROVINCE_CENTER[0], *(commune_lat + center_offset[0])], 4),
            "longitude": np.round([PROVINCE_CENTER[1], *(commune_lon + center_offset[1])], 4),
            "geo_accuracy": [GEO_ACCURACY] * (spec.communes + 1),
        }
    )

    all_agencies = dept_codes + commune_agency_codes
    areas_used = sorted(set(area_of.tolist()))
    aggregation = [aggregation_node(a) for a in areas_used]
    dept_offset = geo.uniform(-0.01, 0.01, (2, spec.departments))
    node_ids = [c for c, _, _ in CORES] + [f"N-{code}" for code in all_agencies] + aggregation
    nodes = pa.table(
        {
            "node_id": node_ids,
            "role": ["core"] * len(CORES) + ["access"] * len(all_agencies) + ["aggregation"] * len(aggregation),
            "agency_code": [None] * len(CORES) + all_agencies + [None] * len(aggregation),
            "commune_code": [None] * (len(CORES) + spec.departments) + commune_codes + [None] * len(aggregation),
            "capacity_bps": [10e9] * len(CORES) + [1e9] * spec.departments + [100e6] * spec.communes
            + [1e9] * len(aggregation),
            "uplink": [None] * len(CORES) + ["CORE-01"] * spec.departments
            + [aggregation_node(a) for a in area_of] + [AREAS[a][3] for a in areas_used],
            "area": [None] * (len(CORES) + spec.departments) + [AREAS[a][0] for a in area_of]
            + [AREAS[a][0] for a in areas_used],
            "latitude": np.round([*(lat for _, lat, _ in CORES), *(PROVINCE_CENTER[0] + dept_offset[0]),
                                  *(commune_lat + center_offset[0]), *(AREAS[a][1] for a in areas_used)], 4),
            "longitude": np.round([*(lon for _, _, lon in CORES), *(PROVINCE_CENTER[1] + dept_offset[1]),
                                   *(commune_lon + center_offset[1]), *(AREAS[a][2] for a in areas_used)], 4),
            "geo_accuracy": [GEO_ACCURACY] * len(node_ids),
        }
    )
    return Reference(provinces, communes, agencies, procedures, centers, nodes)


def _commune_areas(communes: int) -> np.ndarray:
    """Area index of each commune: the AREAS counts in order (wards first), the rest round-robin."""
    planned = np.repeat(np.arange(len(AREAS)), [a[4] for a in AREAS])
    extra = np.arange(max(0, communes - len(planned))) % len(AREAS)
    return np.concatenate([planned, extra])[:communes]


def downstream(nodes: pa.Table, node_id: str) -> list[str]:
    """The node and every node below it in the network tree (what its outage cuts off), node first."""
    children: dict[str, list[str]] = {}
    for child, parent in zip(nodes.column("node_id").to_pylist(), nodes.column("uplink").to_pylist(), strict=True):
        if parent is not None:
            children.setdefault(parent, []).append(child)
    out, todo = [], [node_id]
    while todo:
        node = todo.pop(0)
        out.append(node)
        todo.extend(children.get(node, []))
    return out
