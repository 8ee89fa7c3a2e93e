"""HTML escaping and number formatting for the map pages.

Every string that reaches HTML goes through `_e` (which also escapes the
braces Jinja would read); money and counts round half
up to whole units (`pounds`).
"""

from __future__ import annotations

import html
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pandas as pd

#: Braces as character references: branca compiles the text of every rendered
#: folium element as a Jinja template, and each Jinja delimiter starts with `{`.
_BRACES = str.maketrans({"{": "&#123;", "}": "&#125;"})


def _e(value: Any) -> str:
    """html.escape for anything, braces included; missing values become an empty string.

    The result shows the same text in HTML, but holds no Jinja delimiter, so
    it stays text if folium/branca parse it again (issue 10).
    """
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    return html.escape(str(value), quote=True).translate(_BRACES)


def pounds(value: float) -> int:
    """Round half-up to whole pounds (the proposal's rule; not banker's rounding)."""
    return int(Decimal(repr(float(value))).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _money(value: float) -> str:
    return f"£{pounds(value):,}"


def _count(value: Any) -> str:
    try:
        return f"{pounds(float(value)):,}"
    except (TypeError, ValueError):
        return _e(value)


def _short_icb(name: Any) -> str:
    """'NHS West Yorkshire Integrated Care Board' -> 'West Yorkshire ICB' for narrow tables."""
    text = re.sub(r"^NHS\s+", "", str(name))
    return re.sub(r"\s*Integrated Care Board$", " ICB", text)


def _score(value: Any) -> str:
    try:
        return f"{float(value):,.2f}"
    except (TypeError, ValueError):
        return _e(value)
