"""The rollout states stay distinguishable under simulated colour blindness (issue 14).

Measured as drawn: each fill at its opacity over the basemap's greys, every
pair of states that can be on the map together, CAM02-UCS ΔE after
simulating deuteranopia, protanopia and tritanopia (tests/colour_vision.py).
"""

from __future__ import annotations

from colour_vision import NOT_YET, THRESHOLD, VISIONS, pairs, table, views

from planner.config import default_scenario
from planner.maps import controls


def test_every_pair_of_rollout_states_stays_apart_under_colour_blindness():
    found = pairs(default_scenario())
    assert len(found) >= 10  # all four waves, starting and not yet, in five views
    close = [(p.a, p.b, *p.worst) for p in found if p.worst[1] < THRESHOLD]
    assert not close, table(found)
    assert set(found[0].delta) == set(VISIONS)


def test_views_hold_the_states_the_page_draws_each_year():
    shown = views(default_scenario())
    assert shown["2022/23"] == [NOT_YET, "wave 1 operating", "wave 2 starting"]
    assert shown["2025/26"] == [f"wave {w} operating" for w in range(1, 5)]
    assert shown["all waves"] == shown["2025/26"]


def test_the_measure_finds_the_close_pair_the_issue_reported(monkeypatch):
    """With the old fills (grey not-yet at 35%, starting at 30%), starting and not yet
    were within ΔE 3.5-5.7 under simulated colour blindness: the measure says so too."""
    import colour_vision

    monkeypatch.setattr(colour_vision, "NOT_YET_COLOUR", "#bdbdbd")
    old_style = {**controls.CATCHMENT_STYLE, "starting": 0.3, "notYet": 0.35}
    monkeypatch.setattr(colour_vision, "CATCHMENT_STYLE", old_style)
    old = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
    monkeypatch.setattr(colour_vision, "WAVE_COLOURS", old)
    found = {(p.a, p.b): p for p in pairs(default_scenario())}
    pair = found[(NOT_YET, "wave 3 starting")]
    assert pair.delta["deuteranopia"] < 7 and pair.delta["protanopia"] < 7
    assert pair.delta["normal"] > pair.delta["deuteranopia"]
