"""A small England-and-Wales data set in the shape of the real ONS/MHCLG services and files.

Three English ICBs (two NHS regions) of 20 LSOAs each, laid out as a 10 × 6
grid of squares, plus 12 Welsh LSOAs further west. Every ArcGIS layer and table
and the mid-year workbook carry Welsh rows; the Output Area lookup has more
than 1,000 rows behind a maxRecordCount of 1000; the services use each
object-id spelling (FID, ObjectId, OBJECTID) and one has lower-case field names.
`serve(server)` loads it into a FakeServer; `registry(server)` is the real
registry with its file URLs pointed at that server.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import random
from typing import Any

import pandas as pd
from arcgis_server import FakeServer, FakeService

from planner.sources import DATASETS, IMD_ONLINE_DECILE, SAPE_AGES, Dataset

COLS, ROWS = 10, 6
ENGLISH = COLS * ROWS
WELSH = 12
OAS_PER_LSOA = 20
ICBS = [("E54000001", "QA1", "NHS Alpha ICB"), ("E54000002", "QB2", "NHS Beta ICB")]
ICBS.append(("E54000003", "QC3", "NHS Gamma ICB"))
REGIONS = {  # NHS region → (code, name, grid rows it covers)
    "north": ("E40000012", "North East and Yorkshire", (0, 4)),
    "south": ("E40000005", "South East", (4, 6)),
}
ICB_REGION = {"E54000001": "north", "E54000002": "north", "E54000003": "south"}
WALES_LON = -3.6


def _square(lon: float, lat: float, size: float = 0.01) -> dict[str, Any]:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


@dataclasses.dataclass(frozen=True)
class Area:
    code: str
    name: str
    msoa: str
    icb: int | None  # None: Welsh
    lad: str
    ward: str
    shape: dict[str, Any]


def areas() -> list[Area]:
    out = []
    for i in range(ENGLISH):
        row, col = divmod(i, COLS)
        icb = i // 20
        out.append(
            Area(
                code=f"E01{i + 1:06d}",
                name=f"Area {i // 5:03d}{'ABCDE'[i % 5]}",
                msoa=f"E02{i // 5 + 1:06d}",
                icb=icb,
                lad=f"E0600000{icb + 1}",
                ward=f"E05{i // 2 + 1:06d}",
                shape=_square(-2.0 + 0.01 * col, 52.0 + 0.01 * row),
            )
        )
    for i in range(WELSH):
        out.append(
            Area(
                code=f"W01{i + 1:06d}",
                name=f"Cymru {i // 4:03d}{'ABCD'[i % 4]}",
                msoa=f"W02{i // 4 + 1:06d}",
                icb=None,
                lad="W06000001",
                ward=f"W05{i + 1:06d}",
                shape=_square(WALES_LON + 0.01 * (i % 4), 52.0 + 0.01 * (i // 4)),
            )
        )
    return out


def _table(rows: list[dict[str, Any]], oid: str, **kw: Any) -> FakeService:
    return FakeService(
        [{oid: n + 1, **r} for n, r in enumerate(rows)], geometry=False, oid_field=oid, **kw
    )


def services() -> dict[str, FakeService]:
    """Every ArcGIS service the registry names, with Welsh rows in each."""
    all_areas = areas()
    part = {p.name: p for ds in DATASETS.values() for p in ds.online}
    lsoa_rows = [
        {"FID": n + 1, "LSOA21CD": a.code, "LSOA21NM": a.name} for n, a in enumerate(all_areas)
    ]
    icb_rows = []
    for a in all_areas:
        if a.icb is None:
            sicbl = ("W11000001", "", "Welsh board", "W11000001", "", "Welsh board")
        else:
            code, short, name = ICBS[a.icb]
            sicbl = (f"E3800000{a.icb + 1}", f"{short}X", f"{name} - sub", code, short, name)
        icb_rows.append(
            dict(zip(part["lookup_lsoa_icb"].columns, (a.code, a.name, *sicbl), strict=True))
            | {"CAL24CD": "E56000001", "LAD24CD": a.lad}
        )
    ward_rows = [  # lower-case field names, as some ONS services have
        {"lsoa21cd": a.code, "wd24cd": a.ward, "wd24nm": f"Ward {a.ward[-3:]}"}
        | {"lad24cd": a.lad, "lad24nm": f"District {a.lad[-1]}"}
        for a in all_areas
    ]
    oa_rows = [
        {"OA21CD": f"{a.code[0]}00{n:06d}", "LSOA21CD": a.code, "MSOA21CD": a.msoa}
        | {"MSOA21NM": f"Middle {a.msoa[-3:]}"}
        for n, a in enumerate(a for a in all_areas for _ in range(OAS_PER_LSOA))
    ]
    lads = sorted({(a.lad, a.icb) for a in all_areas}, key=lambda x: x[0])
    rgn_rows = [
        {"LAD24CD": lad, "LAD24NM": f"District {lad[-1]}"}
        | ({"RGN24CD": "E12000001", "RGN24NM": "North"} if icb is not None else {})
        | ({"RGN24CD": "W92000004", "RGN24NM": "Wales"} if icb is None else {})
        for lad, icb in lads
    ]
    region_rows = [
        {"SICBL23CD": f"E3800000{n + 1}", "ICB23CD": code, "ICB23NM": name}
        | {"NHSER23CD": REGIONS[ICB_REGION[code]][0], "NHSER23NM": REGIONS[ICB_REGION[code]][1]}
        for n, (code, _, name) in enumerate(ICBS)
    ] + [{"SICBL23CD": "W11000001", "ICB23CD": "W11000001", "NHSER23CD": "W92000004"}]
    nhser_shapes, nhser_rows = {}, []
    for n, (code, name, (lo, hi)) in enumerate([*REGIONS.values()]):
        ring = [[-2.05, 52.0 + 0.01 * lo], [-1.85, 52.0 + 0.01 * lo], [-1.85, 52.0 + 0.01 * hi]]
        ring += [[-2.05, 52.0 + 0.01 * hi], [-2.05, 52.0 + 0.01 * lo]]
        nhser_shapes[n + 1] = {"type": "Polygon", "coordinates": [ring]}
        nhser_rows.append({"FID": n + 1, "NHSER24CD": code, "NHSER24NM": name})
    shapes = {n + 1: a.shape for n, a in enumerate(all_areas)}
    return {
        str(part["lsoa_boundaries"].service): FakeService(lsoa_rows, shapes=shapes),
        str(part["lookup_lsoa_icb"].service): _table(icb_rows, "ObjectId"),
        str(part["lookup_lsoa_ward_lad"].service): _table(ward_rows, "OBJECTID"),
        str(part["lookup_lsoa_msoa"].service): _table(oa_rows, "FID", max_record_count=1000),
        str(part["lookup_lad_rgn"].service): _table(rgn_rows, "ObjectId"),
        str(part["lookup_icb_nhser"].service): _table(region_rows, "OBJECTID"),
        str(part["nhser_boundaries"].service): FakeService(nhser_rows, shapes=nhser_shapes),
    }


def ages(code: str) -> dict[str, int]:
    rng = random.Random(code)
    return {age: rng.randint(0, 9) for age in SAPE_AGES}


@functools.cache
def workbook() -> bytes:
    """The ONS mid-year workbook: notes above the header on row 4, Welsh rows included."""
    sheet = DATASETS["population"].online[0].sheet
    rows = []
    for a in areas():
        counts = ages(a.code)
        rows.append(
            {"LAD 2021 Code": a.lad, "LAD 2021 Name": "District", "LSOA 2021 Code": a.code}
            | {"LSOA 2021 Name": a.name, "Total": sum(counts.values())}
            | counts
        )
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        notes = pd.DataFrame([["Mid-2022 population estimates"], ["Source: ONS"], [""]])
        notes.to_excel(writer, sheet_name=sheet, index=False, header=False)
        pd.DataFrame(rows).to_excel(writer, sheet_name=sheet, index=False, startrow=3)
    return buffer.getvalue()


def deciles() -> dict[str, int]:
    return {a.code: 1 + n % 10 for n, a in enumerate(areas())}


def imd_file() -> bytes:
    frame = pd.DataFrame(
        {
            "LSOA code (2021)": list(deciles()),
            "LSOA name (2021)": [a.name for a in areas()],
            IMD_ONLINE_DECILE: list(deciles().values()),
        }
    )
    return frame.to_csv(index=False, lineterminator="\n").encode()


def serve(server: FakeServer) -> None:
    server.services.update(services())
    server.files["sapelsoasyoa20222024.xlsx"] = workbook()
    server.files[DATASETS["imd"].online[0].download_path.split("/")[-1]] = imd_file()


def registry(server: FakeServer) -> dict[str, Dataset]:
    """The real registry, its plain-file URLs pointed at `server`."""
    out = {}
    for name, ds in DATASETS.items():
        parts = tuple(
            dataclasses.replace(p, url=server.file_url(p.download_path.split("/")[-1]))
            if p.kind == "file"
            else p
            for p in ds.online
        )
        out[name] = dataclasses.replace(ds, online=parts)
    return out
