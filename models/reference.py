"""Reference data: province -> communes -> agencies, service centers, network nodes, procedures.

Counts follow the source documents for Quang Ngai after the 1 July 2025 merger (DESIGN.md s.2):
12 departments + 96 commune-level people's committees = 108 agencies on the electronic system,
2,184 digitised procedures (848 fully online, 1,336 partly online), 550 of them with no dossier
in three years. Names of communes and procedures are synthetic (the documents do not list them);
department names follow the two-level structure. Electronic identification codes follow the
`000.yy.zz.Hnn` shape of the national agency-code standard (Decision 958/QD-UBND assigns them).
Everything is deterministic: the same `ProvinceSpec` always yields the same tables.
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
    counters_commune_center: int = 4


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
    communes = pa.table(
        {
            "commune_code": commune_codes,
            "province_code": [spec.code] * spec.communes,
            "name": commune_names,
            "kind": commune_kinds,
            "weight": weights / weights.sum(),
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

    centers = pa.table(
        {
            "center_id": [f"{spec.code}-HCC"] + [f"{c}-HCC" for c in commune_codes],
            "name": [f"Trung tâm Phục vụ hành chính công tỉnh {spec.name}"]
            + [f"Trung tâm Phục vụ hành chính công {n}" for n in commune_names],
            "level": ["province"] + ["commune"] * spec.communes,
            "commune_code": [None, *commune_codes],
            "counters": [spec.counters_province_center] + [spec.counters_commune_center] * spec.communes,
        }
    )

    all_agencies = dept_codes + commune_agency_codes
    node_ids = ["CORE-01", "CORE-02"] + [f"N-{code}" for code in all_agencies]
    nodes = pa.table(
        {
            "node_id": node_ids,
            "role": ["core", "core"] + ["access"] * len(all_agencies),
            "agency_code": [None, None, *all_agencies],
            "commune_code": [None, None] + [None] * spec.departments + commune_codes,
            "capacity_bps": [10e9, 10e9] + [1e9] * spec.departments + [100e6] * spec.communes,
        }
    )
    return Reference(provinces, communes, agencies, procedures, centers, nodes)
