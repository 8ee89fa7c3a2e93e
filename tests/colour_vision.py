"""The maps' rollout states as drawn, compared under simulated colour-vision deficiencies.

Each state is a catchment fill at its drawn opacity over the basemap's land
(planner.maps.controls: WAVE_COLOURS, NOT_YET_COLOUR, CATCHMENT_STYLE,
BASEMAP_GREYS), blended in sRGB as the browser draws it. Two states must stay
apart when both can be on the map at once (the same rollout view: "all waves"
or one year of the scenario). Deficiencies are simulated with colorspacious
(Machado et al. 2009, severity 100: dichromacy) and distances are CAM02-UCS
ΔE. The states also differ by outline (white, dashed in the wave colour,
dotted grey); this measures colour alone.

Used by tests/test_maps_colours.py and benchmarks/maps.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from colorspacious import cspace_convert

from planner.config import Scenario, wave_dates
from planner.maps.controls import BASEMAP_GREYS, CATCHMENT_STYLE, NOT_YET_COLOUR, WAVE_COLOURS

#: Vision -> colorspacious cvd_type (None: normal vision).
VISIONS = {
    "normal": None,
    "deuteranopia": "deuteranomaly",
    "protanopia": "protanomaly",
    "tritanopia": "tritanomaly",
}
#: ΔE (CAM02-UCS) below which two states drawn together count as too alike.
THRESHOLD = 10.0
NOT_YET = "not yet operating"


@dataclass(frozen=True)
class Pair:
    """Two states that can be on the map together, and their smallest ΔE per vision."""

    a: str
    b: str
    delta: dict[str, float]  # vision -> min ΔE over the basemap greys

    @property
    def worst(self) -> tuple[str, float]:
        vision = min(self.delta, key=lambda v: self.delta[v])
        return vision, self.delta[vision]


def _rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=float) / 255


def drawn(colour: str, opacity: float, ground: str) -> np.ndarray:
    """sRGB (0-1) of `colour` at `opacity` over `ground`, blended as a browser does."""
    return opacity * _rgb(colour) + (1 - opacity) * _rgb(ground)


def state_fill(state: str) -> tuple[str, float]:
    """(colour, opacity) of a state: "wave N operating", "wave N starting" or NOT_YET."""
    if state == NOT_YET:
        return NOT_YET_COLOUR, CATCHMENT_STYLE["notYet"]
    _, wave, status = state.split()
    colour = WAVE_COLOURS[(int(wave) - 1) % len(WAVE_COLOURS)]
    return colour, CATCHMENT_STYLE["fill" if status == "operating" else "starting"]


def views(scenario: Scenario) -> dict[str, list[str]]:
    """Rollout view -> the states drawn in it ("all waves", then each year)."""
    waves = range(1, len(scenario.waves) + 1)
    out = {"all waves": [f"wave {w} operating" for w in waves]}
    years = list(scenario.years)
    for i, year in enumerate(years):
        states = set()
        for w in waves:
            start, full = (
                years.index(y) if y in years else len(years) for y in wave_dates(scenario, w)
            )
            if full <= i:
                states.add(f"wave {w} operating")
            elif start <= i:
                states.add(f"wave {w} starting")
            else:
                states.add(NOT_YET)
        out[year] = sorted(states)
    return out


def pairs(scenario: Scenario, grounds: Sequence[str] = BASEMAP_GREYS) -> list[Pair]:
    """Every pair of states drawn together in some view, with ΔE per vision (worst ground)."""
    together = sorted(
        {
            tuple(sorted(p))
            for states in views(scenario).values()
            for p in itertools.combinations(states, 2)
        }
    )
    out = []
    for a, b in together:
        delta = {}
        for vision, cvd in VISIONS.items():
            worst = np.inf
            for ground in grounds:
                colours = np.array([drawn(*state_fill(s), ground) for s in (a, b)])
                if cvd is not None:
                    space = {"name": "sRGB1+CVD", "cvd_type": cvd, "severity": 100}
                    colours = np.clip(cspace_convert(colours, space, "sRGB1"), 0, 1)
                ucs = cspace_convert(colours, "sRGB1", "CAM02-UCS")
                worst = min(worst, float(np.linalg.norm(ucs[0] - ucs[1])))
            delta[vision] = worst
        out.append(Pair(a, b, delta))
    return out


def table(found: list[Pair]) -> str:
    """The pairs as a text table, closest first."""
    head = f"{'state':<20} {'drawn with':<20} " + " ".join(f"{v:>12}" for v in VISIONS)
    lines = [head]
    for p in sorted(found, key=lambda p: p.worst[1]):
        cells = " ".join(f"{p.delta[v]:>12.1f}" for v in VISIONS)
        lines.append(f"{p.a:<20} {p.b:<20} {cells}")
    return "\n".join(lines)
