"""Islands standing alone (la_aligned): big enough, bridged, and the rest still balanced."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_partition import grid
from test_partition_services import GridAdjacency

from planner.apportion import apportion
from planner.partition import PRESETS, partition_england


def mainland_and_island(island_people: float) -> tuple[pd.DataFrame, GridAdjacency]:
    """A 10x6 mainland of 1-person areas and a 2x2 island joined by one bridge."""
    main, area, perim = grid(10, 6)
    island, i_area, i_perim = grid(2, 2)
    island = island.assign(a=island.a + 60, b=island.b + 60)
    bridge = pd.DataFrame({"a": [9], "b": [60], "shared_length": [0.0]})
    edges = pd.concat(
        [main.assign(kind="queen"), island.assign(kind="queen"), bridge.assign(kind="bridge")],
        ignore_index=True,
    )
    areas = pd.DataFrame(
        {
            "icb24cd": "A",
            "lad24cd": ["M"] * 60 + ["I"] * 4,
            "population": [1.0] * 60 + [island_people / 4] * 4,
        }
    )
    return areas, GridAdjacency(
        edges, np.concatenate([area, i_area]), np.concatenate([perim, i_perim])
    )


def test_big_island_stands_alone_in_the_aligned_preset() -> None:
    areas, adj = mainland_and_island(14.0)  # 74 people, k = 4: mean 18.5, island 76% of it
    result = partition_england(areas, adj, pd.Series({"A": 4}), PRESETS["la_aligned"])
    labels = result.labels.to_numpy()
    island = labels[60:]
    assert len(set(island)) == 1 and not (labels[:60] == island[0]).any()
    rest = np.bincount(labels[:60], minlength=4)
    rest = rest[rest > 0]
    assert len(rest) == 3 and (np.abs(rest / 18.5 - 1) <= 0.10 + 1e-9).all()
    assert result.islands[["icb24cd", "catchment", "areas", "population"]].values.tolist() == [
        ["A", int(island[0]), 4, 14.0]
    ]
    assert result.islands["share"].iloc[0] == pytest.approx(14 / 18.5)
    # the equal-size preset keeps balance first: the island shares its catchment
    equal_size = partition_england(areas, adj, pd.Series({"A": 4}), PRESETS["equal_size"])
    assert equal_size.islands.empty
    equal = equal_size.labels
    assert (equal.iloc[:60] == equal.iloc[60]).any()


def test_small_island_or_unbalanced_rest_does_not_stand_alone() -> None:
    small, adj = mainland_and_island(4.0)  # 22% of a mean catchment
    assert partition_england(small, adj, pd.Series({"A": 4}), PRESETS["la_aligned"]).islands.empty
    # 12 people with k = 3: the rest (60) would make two catchments of 30 = +25% of the mean 24
    big, adj = mainland_and_island(12.0)
    result = partition_england(big, adj, pd.Series({"A": 3}), PRESETS["la_aligned"])
    assert result.islands.empty


@pytest.mark.slow
def test_isle_of_wight_stands_alone(prepared) -> None:
    _, areas, adjacency = prepared
    code = "E54000042"  # NHS Hampshire and Isle of Wight ICB
    teams = apportion(areas.groupby("icb24cd")["population"].sum(), 202)["teams"]
    rows = np.flatnonzero(areas["icb24cd"].to_numpy() == code)
    one = areas.iloc[rows].reset_index(drop=True)
    result = partition_england(one, adjacency.restrict(rows), teams[[code]], PRESETS["la_aligned"])
    assert len(result.islands) == 1
    alone = result.labels == result.islands["catchment"].iloc[0]
    assert set(one.loc[alone, "lad24nm"]) == {"Isle of Wight"}
    assert alone.sum() == (one["lad24nm"] == "Isle of Wight").sum()
    pops = one.groupby(result.labels)["population"].sum()
    rest = pops.drop(result.islands["catchment"].iloc[0])
    assert (rest / pops.mean() - 1).abs().max() <= 0.10 + 1e-9
