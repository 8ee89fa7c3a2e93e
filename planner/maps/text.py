"""Number and name formatting for the map pages (plain text: the templates escape it).

Money and counts round half up to whole units (`pounds`).
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any


def pounds(value: float) -> int:
    """Round half-up to whole pounds (the proposal's rule; not banker's rounding)."""
    return int(Decimal(repr(float(value))).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def money_text(value: float) -> str:
    return f"£{pounds(value):,}"


def count_text(value: Any) -> str:
    try:
        return f"{pounds(float(value)):,}"
    except (TypeError, ValueError):
        return str(value)


def short_icb_name(name: Any) -> str:
    """'NHS West Yorkshire Integrated Care Board' -> 'West Yorkshire ICB' for narrow tables."""
    text = re.sub(r"^NHS\s+", "", str(name))
    return re.sub(r"\s*Integrated Care Board$", " ICB", text)


def score_text(value: Any) -> str:
    try:
        return f"{float(value):,.3f}"
    except (TypeError, ValueError):
        return str(value)
