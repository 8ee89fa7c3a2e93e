"""Teams per ICB: at least one each, the rest by largest remainder (Hamilton).

Every ICB first gets its minimum; the remaining teams are shared by largest
remainder on each ICB's quota above that minimum.  When every quota is at
least the minimum this is exactly Hamilton's method, so each ICB gets its
quota rounded down or up (the quota rule).  ICBs whose quota is below the
minimum get the minimum and the others' quotas are scaled to the teams left.

Arithmetic is exact (fractions), and ties are broken by code, so the result
never depends on float rounding or input order.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd

from planner.errors import PlannerError

COLUMNS = ["population", "quota", "teams", "mean_catchment"]


def _validate(population: pd.Series, total: int, minimum: int) -> None:
    if len(population) == 0:
        raise PlannerError(
            "no areas to apportion teams to", fix="check the areas table is not empty"
        )
    if population.index.has_duplicates:
        dup = population.index[population.index.duplicated()][0]
        raise PlannerError("area code appears twice", row=str(dup), fix="give each area one row")
    values = pd.to_numeric(population, errors="coerce")
    bad = values.isna() | ~np.isfinite(values.astype(float)) | (values < 0)
    if bad.any():
        code = bad[bad].index[0]
        raise PlannerError(
            "population must be a finite number ≥ 0",
            row=str(code),
            field="population",
            value=population[code],
            fix="correct the population figure for this area",
        )
    if float(values.sum()) <= 0:
        raise PlannerError(
            "total population is zero", field="population", fix="check the population file"
        )
    if int(minimum) != minimum or minimum < 0:
        raise PlannerError("minimum teams per area must be a whole number ≥ 0", value=minimum)
    if int(total) != total or total < 1:
        raise PlannerError("number of teams must be a whole number ≥ 1", field="teams", value=total)
    if total < len(population) * minimum:
        raise PlannerError(
            f"{total} teams cannot give {len(population)} areas at least {minimum} each",
            field="teams",
            value=total,
            fix=f"set teams to at least {len(population) * minimum}",
        )


def largest_remainder(quotas: dict[str, Fraction], seats: int) -> dict[str, int]:
    """Hamilton: floor of each quota, then one more to the largest remainders (ties by code)."""
    base = {code: int(q) for code, q in quotas.items()}  # int() floors non-negative Fractions
    left = seats - sum(base.values())
    order = sorted(quotas, key=lambda code: (-(quotas[code] - base[code]), code))
    for code in order[:left]:
        base[code] += 1
    return base


def apportion(population: pd.Series, total: int = 202, minimum: int = 1) -> pd.DataFrame:
    """Teams per code (e.g. ICB) with quota and mean catchment, sorted by code."""
    _validate(population, total, minimum)
    raw = {str(code): float(v) for code, v in population.items()}
    pops = {code: Fraction(v) for code, v in raw.items()}  # exact value of each float
    grand = sum(pops.values())
    quota = {code: p * total / grand for code, p in pops.items()}
    extra = {code: max(q - minimum, Fraction(0)) for code, q in quota.items()}
    spare = total - minimum * len(pops)
    above = sum(extra.values())
    if above > 0 and spare > 0:
        scaled = {code: e * spare / above for code, e in extra.items()}
        teams = largest_remainder(scaled, spare)
    else:
        teams = {code: 0 for code in pops}
    rows = []
    for code in sorted(pops):
        t = teams[code] + minimum
        rows.append(
            {
                "code": code,
                "population": raw[code],
                "quota": float(quota[code]),
                "teams": int(t),
                "mean_catchment": float(pops[code] / t) if t else float("nan"),
            }
        )
    return pd.DataFrame(rows, columns=["code", *COLUMNS]).set_index("code")
