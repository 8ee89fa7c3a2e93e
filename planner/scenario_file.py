"""Reading and checking scenario TOML files: every mistake named by file, line, key and fix.

The scenario model and its defaults live in `planner.config`; this module
turns a user's TOML into that model. A user changes the plan by copying
`scenarios/proposal-2021.toml` and editing it, so every mistake in it must come
back as a PlannerError naming the file, the line, the dotted key, the value and
the fix, and `planner validate` lists them all at once.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from planner.config import (
    DEFAULT_SCENARIO_PATH,
    OPERATING_OVERFLOW,
    PARTITION_PRESETS,
    SEED_MAX,
    SHARE_BY,
    TEAM_SIZINGS,
    TEAM_YEAR_COST_MAX,
    WAVE_ONE_WITHOUT_SERVICE,
    YEAR_PATTERN,
    Post,
    Scenario,
    Wave,
    default_scenario,
    next_year,
)
from planner.errors import PlannerError

_FIX_SEE = "compare with scenarios/proposal-2021.toml, which documents every key"


class _Collector:
    """Collects every problem in one file so `planner validate` can list them all."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.errors: list[PlannerError] = []

    def line_of(self, key: str) -> int | None:
        """Best-effort line number of a dotted key (within its [section] when there is one)."""
        parts = key.split(".")
        leaf = parts[-1].split("[")[0]
        start, stop = 0, len(self.lines)
        for n in range(len(parts) - 1, 0, -1):  # the innermost [section] that exists
            if "[" in parts[n - 1]:
                continue
            section = re.escape(".".join(parts[:n]))
            header = re.compile(rf"^\s*\[\s*{section}\s*\]")
            heads = [i for i, line in enumerate(self.lines) if header.match(line)]
            if heads:
                start = heads[0] + 1
                nxt = [i for i in range(start, stop) if self.lines[i].lstrip().startswith("[")]
                stop = nxt[0] if nxt else stop
                break
        pat = re.compile(rf'^\s*["\']?{re.escape(leaf)}["\']?\s*=')
        hits = [i + 1 for i in range(start, stop) if pat.match(self.lines[i])]
        return hits[0] if len(hits) == 1 else None

    def add(self, key: str, message: str, value: object, fix: str) -> None:
        line = self.line_of(key)
        where = f" (line {line})" if line else ""
        self.errors.append(
            PlannerError(message + where, file=self.path, field=key, value=value, fix=fix)
        )


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


# A key's checker returns the converted value or None after recording an error.
Checker = Callable[[_Collector, str, Any], Any]


def _show(x: float) -> str:
    """1000000.0 -> '1,000,000'; 0.75 -> '0.75'."""
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,}"


def _number(
    *,
    minimum: float | None = 0.0,
    positive: bool = False,
    integer: bool = False,
    maximum: float | None = None,
    money: bool = False,
) -> Checker:
    def check(c: _Collector, key: str, v: Any) -> Any:
        kind = "a whole number" if integer else "a number"
        if not _is_number(v) or (integer and not isinstance(v, int)):
            c.add(
                key,
                f"must be {kind}, not {type(v).__name__}",
                v,
                f"write {key.split('.')[-1]} = <{kind}> without quotes",
            )
            return None
        if isinstance(v, float) and not math.isfinite(v):
            c.add(key, "must be finite", v, "give a finite number")
            return None
        if positive and v <= 0:
            c.add(key, "must be greater than zero", v, "give a positive value")
            return None
        if minimum is not None and v < minimum:
            if minimum == 0:
                what = "money cannot be negative" if money else "cannot be negative"
            else:
                what = f"must be at least {_show(minimum)}"
            c.add(key, what, v, f"give a value of at least {_show(minimum)}")
            return None
        if maximum is not None and v > maximum:
            c.add(
                key,
                f"must be at most {_show(maximum)}",
                v,
                f"give a value of at most {_show(maximum)}",
            )
            return None
        return int(v) if integer else float(v)

    return check


def _string(choices: tuple[str, ...] | None = None) -> Checker:
    def check(c: _Collector, key: str, v: Any) -> Any:
        if not isinstance(v, str):
            c.add(key, f"must be text, not {type(v).__name__}", v, 'write the value in "quotes"')
            return None
        if choices is not None and v not in choices:
            c.add(key, f"must be one of {', '.join(choices)}", v, f"use one of {choices}")
            return None
        return v

    return check


def _boolean(c: _Collector, key: str, v: Any) -> Any:
    if not isinstance(v, bool):
        c.add(
            key,
            f"must be true or false, not {type(v).__name__}",
            v,
            "write true or false (lower case, no quotes)",
        )
        return None
    return v


def _year(c: _Collector, key: str, v: Any) -> Any:
    if (
        not isinstance(v, str)
        or not (m := YEAR_PATTERN.match(v))
        or ((int(m.group(1)) + 1) % 100 != int(m.group(2)))
    ):
        c.add(
            key,
            'must be a financial year like "2022/23"',
            v,
            'write the year as "YYYY/YY", e.g. "2022/23"',
        )
        return None
    return v


def _list_of(item: Checker, *, min_len: int = 0) -> Checker:
    def check(c: _Collector, key: str, v: Any) -> Any:
        if not isinstance(v, list):
            c.add(key, f"must be a list, not {type(v).__name__}", v, "write a list like [a, b, c]")
            return None
        if len(v) < min_len:
            c.add(key, f"must have at least {min_len} entries", v, "add entries")
            return None
        out = [item(c, f"{key}[{i}]", x) for i, x in enumerate(v)]
        return None if any(x is None for x in out) else tuple(out)

    return check


def _table(
    c: _Collector, key: str, v: Any, spec: dict[str, Checker], required: tuple[str, ...] = ()
) -> dict[str, Any] | None:
    """Check one TOML table against `spec`: unknown keys, missing keys, each value."""
    if not isinstance(v, dict):
        c.add(key, f"must be a table, not {type(v).__name__}", v, f"write it as a [{key}] section")
        return None
    out: dict[str, Any] = {}
    ok = True
    for k, val in v.items():
        dotted = f"{key}.{k}" if key else k
        if k not in spec:
            c.add(
                dotted,
                "unknown key",
                val,
                f"remove it or correct the spelling; known keys here: {', '.join(spec)}",
            )
            ok = False
            continue
        res = spec[k](c, dotted, val)
        if res is None:
            ok = False
        else:
            out[k] = res
    for k in required:
        if k not in v:
            c.add(f"{key}.{k}" if key else k, "missing", None, f"add {k} = ... ({_FIX_SEE})")
            ok = False
    return out if ok else None


def _post(c: _Collector, key: str, v: Any) -> Any:
    spec = {"role": _string(), "band": _string(), "wte": _number(positive=True, maximum=100)}
    t = _table(c, key, v, spec, required=("role", "band", "wte"))
    return None if t is None else Post(t["role"], t["band"], t["wte"])


def _wave(c: _Collector, key: str, v: Any) -> Any:
    spec = {"teams": _number(integer=True), "start_year": _year, "ramp_up": _boolean}
    t = _table(c, key, v, spec, required=("teams", "start_year", "ramp_up"))
    return None if t is None else Wave(t["teams"], t["start_year"], t["ramp_up"])


def _pay_points(c: _Collector, key: str, v: Any) -> Any:
    if not isinstance(v, dict) or not v:
        c.add(
            key, "must be a table of band = annual salary", v, 'write e.g. [pay_points] "7" = 40894'
        )
        return None
    pay = _number(positive=True, maximum=1_000_000, money=True)
    out = {b: pay(c, f"{key}.{b}", s) for b, s in v.items()}
    return None if any(x is None for x in out.values()) else tuple(out.items())


def _locks(c: _Collector, key: str, v: Any) -> Any:
    if not isinstance(v, dict):
        c.add(key, "must be a table of team_id = wave", v, 'write e.g. [phasing.locks] "QWO-1" = 1')
        return None
    out = {t: _number(integer=True, positive=True)(c, f"{key}.{t}", w) for t, w in v.items()}
    return None if any(x is None for x in out.values()) else tuple(sorted(out.items()))


_SECTIONS: dict[str, dict[str, tuple[str, Checker]]] = {
    # section -> toml key -> (Scenario field, checker)
    "": {
        "name": ("name", _string()),
        "description": ("description", _string()),
        "seed": ("seed", _number(integer=True, maximum=SEED_MAX)),
    },
    "coverage": {
        "population_per_team": (
            "population_per_team",
            _number(integer=True, positive=True, maximum=100_000_000),
        ),
        "teams": ("teams", _number(integer=True, positive=True)),
    },
    "team": {
        "posts": ("posts", _list_of(_post, min_len=1)),
        "sizing": ("team_sizing", _string(TEAM_SIZINGS)),
        "sizing_min": ("team_sizing_min", _number(positive=True, maximum=1.0)),
        "sizing_max": ("team_sizing_max", _number(minimum=1.0, maximum=10.0)),
    },
    "pay_points": {},  # free keys (bands), handled by _pay_points
    "costs": {
        "oncost_uplift": ("oncost_uplift", _number(positive=True, maximum=10.0)),
        "pay_growth": ("pay_growth", _number(positive=True, maximum=10.0)),
        "starting_labour_share": ("starting_labour_share", _number(maximum=1.0)),
        "training_first_year": (
            "training_first_year",
            _number(maximum=1_000_000_000, money=True),
        ),
        "training_second_year": (
            "training_second_year",
            _number(maximum=1_000_000_000, money=True),
        ),
        "development_programme": (
            "development_programme",
            _list_of(_number(maximum=1_000_000_000_000, money=True)),
        ),
    },
    "capacity": {
        "babies_full_year": ("babies_full_year", _number(integer=True, maximum=1_000_000)),
        "babies_first_year": ("babies_first_year", _number(integer=True, maximum=1_000_000)),
    },
    "years": {
        "labels": ("years", _list_of(_year, min_len=1)),
        "spending_review": ("spending_review", _list_of(_year)),
    },
    "waves": {},  # array of tables, handled by _wave
    "need": {
        "base_weight": ("need_base_weight", _number(maximum=1_000_000)),
        "deprived_weight": ("need_deprived_weight", _number(maximum=1_000_000)),
        "deprived_max_decile": ("need_deprived_max_decile", _number(integer=True, maximum=10)),
    },
    "phasing": {
        "regional_fair_shares": ("regional_fair_shares", _boolean),
        "share_by": ("share_by", _string(SHARE_BY)),
        "wave_one_without_service": ("wave_one_without_service", _string(WAVE_ONE_WITHOUT_SERVICE)),
        "operating_overflow": ("operating_overflow", _string(OPERATING_OVERFLOW)),
        "first_team_by_wave": ("first_team_by_wave", _number(integer=True, positive=True)),
        "locks": ("locks", _locks),
    },
    "partition": {
        "preset": ("partition_preset", _string(tuple(PARTITION_PRESETS))),
        "tolerance": ("partition_tolerance", _number(positive=True, maximum=1.0)),
    },
}


def _read_toml(path: Path) -> tuple[dict[str, Any], str]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PlannerError(
            "scenario file not found",
            file=path,
            fix="give the path of a .toml scenario, e.g. scenarios/proposal-2021.toml",
        ) from None
    except OSError as exc:
        raise PlannerError(
            f"cannot read scenario file: {exc.strerror}",
            file=path,
            fix="check the path and its permissions",
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PlannerError(
            f"not UTF-8 text (byte {exc.start})", file=path, fix="save the scenario as UTF-8"
        ) from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        where = f"line {m.group(1)}, column {m.group(2)}" if m else "end of file"
        detail = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", msg)
        bad = text.splitlines()[int(m.group(1)) - 1].strip() if m else None
        raise PlannerError(
            f"TOML syntax error at {where}: {detail}",
            file=path,
            value=bad,
            fix='correct the TOML syntax (strings in "quotes", key = value)',
        ) from None


def _parse(path: Path) -> tuple[Scenario | None, list[PlannerError]]:
    data, text = _read_toml(path)
    c = _Collector(path, text)
    values: dict[str, Any] = {}
    top = _SECTIONS[""]
    for section, content in data.items():
        if section in top:
            name, check = top[section]
            res = check(c, section, content)
            if res is not None:
                values[name] = res
        elif section == "pay_points":
            res = _pay_points(c, section, content)
            if res is not None:
                values["pay_points"] = res
        elif section == "waves":
            res = _list_of(_wave, min_len=1)(c, section, content)
            if res is not None:
                values["waves"] = res
        elif section in _SECTIONS:
            spec = {k: chk for k, (_, chk) in _SECTIONS[section].items()}
            t = _table(c, section, content, spec)
            if t is not None:
                for k, v in t.items():
                    values[_SECTIONS[section][k][0]] = v
        else:
            known = [*top, *(s for s in _SECTIONS if s)]
            c.add(
                section,
                "unknown key or section",
                "{...}" if isinstance(content, dict) else content,
                f"remove it or correct the spelling; known: {', '.join(known)}",
            )
    coverage = data.get("coverage")
    if isinstance(coverage, dict) and "population_per_team" in coverage and "teams" not in coverage:
        values["teams"] = None  # follows from England's population (resolve_teams)
    if "partition_tolerance" not in values and "partition_preset" in values:
        values["partition_tolerance"] = PARTITION_PRESETS[values["partition_preset"]]
    if c.errors:
        return None, c.errors
    scenario = Scenario(**values, source=str(path))
    _cross_check(scenario, c)
    return (None if c.errors else scenario), c.errors


def _cross_check(s: Scenario, c: _Collector) -> None:
    """Rules that involve more than one key."""
    years = list(s.years)
    for i in range(1, len(years)):
        if years[i] != next_year(years[i - 1]):
            c.add(
                f"years.labels[{i}]",
                f"years must be consecutive and in order; after {years[i - 1]} "
                f"comes {next_year(years[i - 1])}",
                years[i],
                "list the financial years in order",
            )
            break
    if len(set(years)) != len(years):
        c.add("years.labels", "a year is listed twice", years, "list each year once")
    sr = list(s.spending_review)
    if sr != years[: len(sr)]:
        c.add(
            "years.spending_review",
            "must be the first years of years.labels, in order",
            sr,
            f"use e.g. {years[:3]}",
        )
    if len(s.development_programme) > len(years):
        c.add(
            "costs.development_programme",
            f"has {len(s.development_programme)} entries but there are {len(years)} years",
            list(s.development_programme),
            "give at most one amount per year (missing years are £0)",
        )
    total = sum(s.wave_sizes)
    if s.teams is not None and total != s.teams:
        c.add(
            "waves",
            f"wave sizes sum to {total} but coverage.teams is {s.teams}",
            list(s.wave_sizes),
            f"make the wave sizes add up to {s.teams} (or change coverage.teams)",
        )
    for i, w in enumerate(s.waves):
        if w.start_year not in years:
            c.add(
                f"waves[{i}].start_year",
                "is not one of years.labels",
                w.start_year,
                f"use one of {years}",
            )
    starts = [years.index(w.start_year) for w in s.waves if w.start_year in years]
    if starts != sorted(starts):
        c.add(
            "waves",
            "waves must start in order (wave 1 first)",
            [w.start_year for w in s.waves],
            "order the [[waves]] sections by start year",
        )
    bands = dict(s.pay_points)
    for i, p in enumerate(s.posts):
        if p.band not in bands:
            c.add(
                f"team.posts[{i}].band",
                "has no pay point",
                p.band,
                f"add it to [pay_points] or use one of {', '.join(bands)}",
            )
    _check_cost_scale(s, c)
    if s.babies_first_year > s.babies_full_year:
        c.add(
            "capacity.babies_first_year",
            "is more than babies_full_year",
            s.babies_first_year,
            "a ramp-up year should not see more babies than a full year",
        )
    if s.first_team_by_wave is not None and s.first_team_by_wave > len(s.waves):
        c.add(
            "phasing.first_team_by_wave",
            f"there are only {len(s.waves)} waves",
            s.first_team_by_wave,
            f"give a wave between 1 and {len(s.waves)}, or leave the key out",
        )
    for team, wave in s.locks:
        if wave > len(s.waves):
            c.add(
                f"phasing.locks.{team}",
                f"there are only {len(s.waves)} waves",
                wave,
                f"lock to a wave between 1 and {len(s.waves)}",
            )


def _check_cost_scale(s: Scenario, c: _Collector) -> None:
    """One team-year of labour must stay a sane sum of money in every year (no overflow)."""
    bands = dict(s.pay_points)
    if any(p.band not in bands for p in s.posts):
        return  # reported on its own
    log_cost = (
        math.log10(s.salary_bill)
        + math.log10(s.oncost_uplift)
        + (len(s.years) - 1) * math.log10(s.pay_growth)
    )
    if log_cost > math.log10(TEAM_YEAR_COST_MAX):
        c.add(
            "team.posts",
            f"one team-year of labour would cost about £1e{log_cost:.0f} in {s.years[-1]} "
            f"(salary bill £{s.salary_bill:,.0f} × on-costs × pay growth), beyond any budget",
            [p.wte for p in s.posts],
            "check the WTE of each post, the [pay_points], costs.oncost_uplift and "
            "costs.pay_growth (pounds a year, e.g. 40894)",
        )


def validate_scenario_file(path: str | Path) -> list[PlannerError]:
    """Every problem in a scenario file (empty list: the file is good)."""
    try:
        _, errors = _parse(Path(path))
    except PlannerError as exc:
        return [exc]
    return errors


def load_scenario(path: str | Path | None = None) -> Scenario:
    """Read and validate a scenario TOML; None means the bundled proposal-2021.toml.

    Without the repository (an installed wheel) None gives the embedded defaults,
    which a test keeps equal to that file.

    Raises the first PlannerError found (validate_scenario_file lists them all).
    """
    if path is None:
        if not DEFAULT_SCENARIO_PATH.exists():  # installed without the repo: same values, embedded
            return default_scenario()
        path = DEFAULT_SCENARIO_PATH
    path = Path(path)
    scenario, errors = _parse(path)
    if errors:
        raise errors[0]
    assert scenario is not None
    return scenario
