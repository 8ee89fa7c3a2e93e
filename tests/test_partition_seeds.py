"""Every random stream of the partitioner comes from planner.partition.seeds."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from planner.partition import seeds


def test_streams_keep_the_values_labels_were_drawn_with() -> None:
    # The table of the module docstring: a change here changes every plan's catchments.
    assert seeds.stream(3, "start", 2) == 3 * 7919 + 2
    assert seeds.stream(3, "recombine", 1, 31) == 3 * 7919 + 104_729 * 2 + 31
    assert seeds.stream(40, "redraw", 2) == 42
    assert seeds.stream(40, "search") == 40
    assert seeds.stream(5, "own_district", 1) == (5, 1001)
    assert seeds.stream(5, "piece", 7) == (5, 3007)
    assert seeds.stream(5, "polish") == (5, 5000)
    assert seeds.stream(5, "strip", 4) == (5, 4)
    assert seeds.stream(5, "redraw_polish", 1, 2, 3) == (5, 1, 2, 3)
    assert seeds.stream(5, "pair", 1, 2, 3) == 5 * 7919 + 211_039 * 2 + 4099 * 2 + 3
    assert seeds.metis_seed(2**31 + 5) == 5


def test_rng_is_numpy_seeded_with_the_stream() -> None:
    for purpose, index in (("polish", ()), ("piece", (2,)), ("start", (1,))):
        expected = np.random.default_rng(seeds.stream(9, purpose, *index)).random(4)
        np.testing.assert_array_equal(seeds.rng(9, purpose, *index).random(4), expected)
    assert seeds.rng(1, "polish").random() != seeds.rng(2, "polish").random()


def test_unknown_purpose_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown random stream 'polsh'"):
        seeds.stream(0, "polsh")


def test_no_other_module_seeds_a_generator() -> None:
    package = Path(seeds.__file__).parent
    for path in package.glob("*.py"):
        if path.name == "seeds.py":
            continue
        text = path.read_text()
        assert "default_rng" not in text, path.name
        assert not re.search(r"seed\s*[*+]", text), path.name  # no seed arithmetic
