"""Existing services kept whole: on synthetic grids and on the real ICBs with known services."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from test_partition import contiguous, grid

from planner.apportion import apportion
from planner.errors import PlannerError
from planner.partition import PRESETS, PartitionSettings, partition_england


@dataclass
class GridAdjacency:
    """The parts of planner.adjacency.Adjacency the partitioner reads."""

    edges: pd.DataFrame
    area: np.ndarray
    perimeter: np.ndarray


def grid_country(w: int, h: int, icb_cols: int | None = None) -> tuple[pd.DataFrame, GridAdjacency]:
    """A w x h grid of 1-person areas, one district a column pair; ICB A left of icb_cols, B right."""
    edges, area, perim = grid(w, h)
    xs = np.arange(w * h) % w
    icb = np.where(xs < (icb_cols or w), "A", "B")
    areas = pd.DataFrame(
        {
            "icb24cd": icb,
            "lad24cd": [f"L{x // 2}" for x in xs],
            "population": 1.0,
        }
    )
    same = icb[edges["a"]] == icb[edges["b"]]
    return areas, GridAdjacency(edges.loc[same].reset_index(drop=True), area, perim)


def block(w: int, x0: int, x1: int, y0: int, y1: int) -> np.ndarray:
    return np.array([y * w + x for y in range(y0, y1) for x in range(x0, x1)])


def check_plan(areas: pd.DataFrame, adj: GridAdjacency, labels: pd.Series, k: dict, tol: float):
    key = areas["icb24cd"] + ":" + labels.astype(str)
    for code, teams in k.items():
        rows = areas["icb24cd"] == code
        sizes = areas.loc[rows].groupby(key[rows])["population"].sum()
        assert len(sizes) == teams
        assert (sizes / sizes.mean() - 1).abs().max() <= tol + 1e-9
    codes = pd.factorize(key)[0]
    assert contiguous(codes, adj.edges)


@pytest.mark.parametrize("preset", ["la_aligned", "equal_size"])
def test_small_service_lies_in_one_catchment(preset: str) -> None:
    w, h, k = 12, 8, 6  # 16 people a catchment
    areas, adj = grid_country(w, h)
    services = pd.Series(pd.NA, index=areas.index, dtype="string")
    services.iloc[block(w, 3, 7, 1, 4)] = "S"  # 12 people straddling three districts
    settings = PartitionSettings(preset, 0.10 if preset == "la_aligned" else 0.005, 0)
    result = partition_england(areas, adj, pd.Series({"A": k}), settings, services=services)
    assert result.labels[services == "S"].nunique() == 1
    check_plan(areas, adj, result.labels, {"A": k}, settings.tolerance)
    row = result.services.iloc[0]
    assert (row.service, row.wanted, bool(row.kept_whole), row.reason) == (
        "S",
        "one catchment",
        True,
        "",
    )
    assert result.notes == []
    without = partition_england(areas, adj, pd.Series({"A": k}), settings).labels
    assert without[services == "S"].nunique() > 1  # the input changed the plan


@pytest.mark.parametrize("preset", ["la_aligned", "equal_size"])
def test_big_service_is_covered_by_catchments_inside_it(preset: str) -> None:
    w, h, k = 12, 8, 6
    areas, adj = grid_country(w, h)
    services = pd.Series(pd.NA, index=areas.index, dtype="string")
    # 32 people across five districts: two catchments, off the six 4x4 squares that a
    # plain plan of this grid draws
    inside = block(w, 1, 9, 0, 4)
    services.iloc[inside] = "BIG"
    settings = PartitionSettings(preset, 0.10 if preset == "la_aligned" else 0.005, 0)
    result = partition_england(areas, adj, pd.Series({"A": k}), settings, services=services)
    held = set(result.labels.iloc[inside])
    assert len(held) == 2
    outside = np.setdiff1d(np.arange(len(areas)), inside)
    assert not set(result.labels.iloc[outside]) & held
    check_plan(areas, adj, result.labels, {"A": k}, settings.tolerance)
    assert result.services["wanted"].tolist() == ["2 catchments inside it"]
    assert result.services["kept_whole"].tolist() == [True]
    plain = partition_england(areas, adj, pd.Series({"A": k}), settings).labels
    assert set(plain.iloc[inside]) & set(plain.iloc[outside])  # the input changed the plan


def test_service_too_big_for_one_and_too_small_for_two_is_reported() -> None:
    w, h, k = 12, 8, 6
    areas, adj = grid_country(w, h)
    services = pd.Series(pd.NA, index=areas.index, dtype="string")
    services.iloc[block(w, 0, 3, 0, 8)] = "MID"  # 24 people: 1.5 catchments
    result = partition_england(
        areas, adj, pd.Series({"A": k}), PRESETS["la_aligned"], services=services
    )
    check_plan(areas, adj, result.labels, {"A": k}, 0.10)
    row = result.services.iloc[0]
    assert not row.kept_whole and row.wanted == ""
    assert (
        row.reason == "1 would be +50.0% and 2 would be -25.0% from the mean, both outside ±10.0%"
    )
    assert result.notes == [f"service (MID) in A (1.50 catchments' worth): {row.reason}"]


def test_service_that_would_cut_off_a_piece_says_which() -> None:
    w, h, k = 12, 8, 6
    areas, adj = grid_country(w, h)
    services = pd.Series(pd.NA, index=areas.index, dtype="string")
    services.iloc[block(w, 1, 5, 0, 8)] = "BAND"  # 32 people, 2 catchments: column 0 cut off
    result = partition_england(
        areas, adj, pd.Series({"A": k}), PRESETS["la_aligned"], services=services
    )
    check_plan(areas, adj, result.labels, {"A": k}, 0.10)
    row = result.services.iloc[0]
    assert not row.kept_whole
    assert row.reason == (
        "the rest of the ICB could not then be split into balanced catchments: a piece of 8 "
        "people (0.50 catchments' worth) would be cut off from the rest"
    )


def test_service_across_an_icb_boundary_is_held_in_each_part_and_reported() -> None:
    w, h = 12, 8
    areas, adj = grid_country(w, h, icb_cols=6)  # A: 48 people, B: 48 people
    services = pd.Series(pd.NA, index=areas.index, dtype="string")
    services.iloc[block(w, 4, 8, 2, 5)] = "X"  # 6 people in each ICB
    teams = pd.Series({"A": 3, "B": 3})
    result = partition_england(areas, adj, teams, PRESETS["la_aligned"], services=services)
    check_plan(areas, adj, result.labels, {"A": 3, "B": 3}, 0.10)
    for code in ("A", "B"):
        part = (services == "X") & (areas["icb24cd"] == code)
        assert result.labels[part].nunique() == 1
    assert result.services["icb24cd"].tolist() == ["A", "B"]
    assert all(r.startswith("crosses an ICB boundary (A, B)") for r in result.services["reason"])
    assert len(result.notes) == 2


def test_services_must_be_aligned_with_the_areas() -> None:
    areas, adj = grid_country(6, 4)
    services = pd.Series("S", index=areas.index + 1)
    with pytest.raises(PlannerError, match="not aligned"):
        partition_england(areas, adj, pd.Series({"A": 2}), services=services)


@pytest.fixture(scope="module")
def service_icbs(prepared, mirror_dir):
    """The real ICBs that hold a district named in known_services_2019.csv, with the services."""
    _, areas, adjacency = prepared
    readiness = pd.read_csv(mirror_dir / "readiness" / "known_services_2019.csv")
    named = readiness.loc[readiness["readiness"].isin(["operating", "emerging"]), "area_code"]
    services = areas["lad24cd"].where(areas["lad24cd"].isin(set(named)))
    icbs = sorted(areas.loc[services.notna(), "icb24cd"].unique())
    rows = np.flatnonzero(areas["icb24cd"].isin(icbs).to_numpy())
    teams = apportion(areas.groupby("icb24cd")["population"].sum(), 202)["teams"]
    one = areas.iloc[rows].reset_index(drop=True)
    return one, adjacency.restrict(rows), teams[icbs], services.iloc[rows].reset_index(drop=True)


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["la_aligned", "equal_size"])
def test_real_services_kept_whole(service_icbs, preset: str) -> None:
    areas, adjacency, teams, services = service_icbs
    result = partition_england(areas, adjacency, teams, PRESETS[preset], services=services)
    key = areas["icb24cd"] + ":" + result.labels.astype(str)
    table = result.services.set_index("service")
    for code, row in table.iterrows():
        inside = services == code
        held = set(key[inside])
        if row.wanted == "one catchment":
            assert len(held) == 1, code
        if row.wanted.endswith("catchments inside it"):
            assert not held & set(key[~inside]), code
            assert len(held) == int(row.wanted.split()[0])
        assert row.kept_whole == bool(row.wanted), (code, row.reason)
        assert bool(row.reason) != bool(row.kept_whole), code
    sizes = areas.groupby(key)["population"].sum()
    icb = sizes.index.str.split(":").str[0]
    assert (sizes / sizes.groupby(icb).transform("mean") - 1).abs().max() <= (
        PRESETS[preset].tolerance + 1e-9
    )
    if preset == "la_aligned":  # Leeds: 3.04 catchments, three of its own
        assert table.loc["E08000035", "wanted"] == "3 catchments inside it"
    else:  # at ±0.5% three Leeds-only catchments would each be 1.4% over the mean
        assert (
            "3 would be +1.4% and 4 would be -24.0% from the mean"
            in table.loc["E08000035", "reason"]
        )
    assert table.loc["E08000008", "kept_whole"]  # Tameside: one catchment in both presets
