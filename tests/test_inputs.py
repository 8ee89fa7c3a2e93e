"""planner.inputs: any registered file read as described, England's rows kept and counted."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from planner import inputs
from planner.errors import PlannerError
from planner.sources import DATASETS

IMD = DATASETS["imd"]


def _imd(tmp_path: Path, rows: list[str], name: str | None = None) -> Path:
    path = tmp_path / (name or Path(IMD.mirror_path).name)
    path.write_text("LSOA21CD,IMD_decile\n" + "".join(f"{r}\n" for r in rows))
    return path


def test_other_countries_are_dropped_counted_and_rows_keep_their_numbers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _imd(tmp_path, ["W01000001,3", "E01000001,4", "S01000001,5", ",6", "X1,7"])
    with caplog.at_level(logging.INFO):
        table = inputs.read_file(IMD, path)
    assert table.dropped == {"Welsh": 1, "Scottish": 1}
    assert f"{path.name}: 5 rows; 1 Scottish rows, 1 Welsh rows dropped" in caplog.text
    # an empty or malformed code is kept for the stage's own checks, never dropped
    assert table.frame["LSOA21CD"].fillna("").tolist() == ["E01000001", "", "X1"]
    assert [table.row_number(i) for i in table.frame.index] == [3, 5, 6]


def test_online_file_is_renamed_to_the_readers_names(tmp_path: Path) -> None:
    part = IMD.online[0]
    path = tmp_path / Path(part.download_path).name
    header = ",".join(f'"{c}"' for c in ("LSOA code (2021)", "Other", *part.columns[1:]))
    path.write_text(header + "\nE01000001,x,7\nW01000001,y,2\n")
    table = inputs.read_file(IMD, path)
    assert list(table.frame.columns) == ["LSOA21CD", "IMD_decile"]
    assert table.frame.to_dict("records") == [{"LSOA21CD": "E01000001", "IMD_decile": "7"}]
    assert table.source_name("LSOA21CD") == "LSOA code (2021)"


def test_a_file_of_only_another_country_is_named_so(tmp_path: Path) -> None:
    path = _imd(tmp_path, ["W01000001,3", "W01000002,4"])
    with pytest.raises(PlannerError, match=r"no English rows.*2 Welsh.*another country"):
        inputs.read_file(IMD, path)


def test_an_html_page_is_refused_with_the_force_fix(tmp_path: Path) -> None:
    path = tmp_path / Path(IMD.mirror_path).name
    path.write_bytes(b"\n  <!DOCTYPE html><html><title>Sign in</title></html>")
    with pytest.raises(PlannerError, match=r"HTML page.*planner fetch --force"):
        inputs.read_file(IMD, path)
