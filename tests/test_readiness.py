"""Readiness CSV: forgiving about Excel's habits, strict about anything that would change the plan."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import link_mirror
from synthetic import synthetic_country

from planner import readiness
from planner.errors import PlannerError

FIVE = (
    "area_code,readiness,note\n"
    "E06000000,operating,first\n"
    "E06000001,operating,second\n"
    "E06000002,operating,third\n"
    "E06000003,operating,fourth\n"
    "E06000004,operating,fifth\n"
)


def raises(func, *args, **kwargs) -> PlannerError:
    """The PlannerError that func(*args, **kwargs) raises."""
    with pytest.raises(PlannerError) as info:
        func(*args, **kwargs)
    return info.value


@pytest.fixture(scope="module")
def known():
    catch, areas, _ = synthetic_country()
    return readiness.known_area_codes(areas, catch)


def write(tmp_path: Path, text: str | bytes, name: str = "readiness.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", newline="")
    else:
        path.write_bytes(text)
    return path


def only_problem(path: Path, known) -> PlannerError:
    """The file's one problem: raised by read_readiness, listed alone by validate."""
    err = raises(readiness.read_readiness, path, known)
    assert [str(p) for p in readiness.validate_readiness_file(path, known)] == [str(err)]
    assert err.file == str(path) and err.fix
    return err


# ----------------------------------------------------------------------------- what is accepted


def test_read_bom_crlf_extra_columns_case(tmp_path: Path, known) -> None:
    text = (
        "\ufeffArea_Code,area_name,Readiness,note,source\r\n"
        'E06000000,x,Operating,"Early Attachment Service, since 2011",http://x\r\n'
        "e06000001,y,emerging,,\r\n\r\n"
    )
    frame = readiness.read_readiness(write(tmp_path, text), known)
    assert list(frame.columns) == readiness.READINESS_COLUMNS
    assert list(frame["row"]) == [2, 3]
    assert list(frame["area_code"]) == ["E06000000", "E06000001"]
    assert list(frame["readiness"]) == ["operating", "emerging"]
    assert frame["note"].iloc[0] == "Early Attachment Service, since 2011"
    assert frame["area_name"].iloc[0] == "District 00000"


def test_read_excel_cp1252(tmp_path: Path, known) -> None:
    """A file that is wholly Windows-1252 (Excel's "CSV" on Windows) is read as such."""
    raw = "area_code,readiness,note\r\nE06000000,operating,Café service – £5k\r\n".encode("cp1252")
    frame = readiness.read_readiness(write(tmp_path, raw), known)
    assert frame["note"].iloc[0] == "Café service – £5k"


def test_utf8_accents_and_a_long_note_under_the_limit(tmp_path: Path, known) -> None:
    note = "Café " + "x" * (readiness.MAX_FIELD_CHARS - 5)
    frame = readiness.read_readiness(
        write(tmp_path, f"area_code,readiness,note\nE06000000,operating,{note}\n"), known
    )
    assert frame["note"].iloc[0] == note


def test_quoted_quote_and_tab_are_fine(tmp_path: Path, known) -> None:
    text = 'area_code,readiness,note\nE06000000,operating,"the ""PAIRS""\tservice"\n'
    frame = readiness.read_readiness(write(tmp_path, text), known)
    assert frame["note"].iloc[0] == 'the "PAIRS"\tservice'


# ----------------------------------------------------------------------------- encoding


def test_utf16_is_explained(tmp_path: Path, known) -> None:
    raw = "area_code,readiness\r\nE06000000,operating\r\n".encode("utf-16")
    err = only_problem(write(tmp_path, raw), known)
    assert "UTF-16" in str(err) and "CSV UTF-8" in err.fix


def test_undecodable_bytes(tmp_path: Path, known) -> None:
    raw = b"area_code,readiness\nE06000000,operating\x81\n"
    err = only_problem(write(tmp_path, raw), known)
    assert "UTF-8" in str(err) and err.row == 2


def test_one_cp1252_byte_in_a_utf8_file_is_an_error_not_mojibake(tmp_path: Path, known) -> None:
    raw = (
        "area_code,readiness,note\nE06000000,operating,Café\nE06000001,emerging,".encode()
        + "£5k".encode("cp1252")
        + b"\n"
    )
    err = only_problem(write(tmp_path, raw), known)
    assert err.row == 3 and "0xa3" in str(err) and "rest of the file is UTF-8" in str(err)
    assert "line 3" in err.fix


# ----------------------------------------------------------------------------- CSV structure


def test_unclosed_quote_fails_naming_its_row(tmp_path: Path, known) -> None:
    """Before: the four rows after the quote became part of row 2's note, silently."""
    text = FIVE.replace("operating,first", 'operating,"first')
    err = only_problem(write(tmp_path, text), known)
    assert err.row == 2 and "quote opened on row 2 is not closed" in str(err)
    assert "close the quote on row 2" in err.fix


def test_unclosed_quote_closed_by_a_later_quote(tmp_path: Path, known) -> None:
    text = FIVE.replace("operating,first", 'operating,"first').replace(
        "operating,fourth", 'operating,"fourth"'
    )
    problems = readiness.validate_readiness_file(write(tmp_path, text), known)
    assert problems[0].row == 2 and "not closed on that line" in problems[0].detail


def test_stray_quote_mid_field(tmp_path: Path, known) -> None:
    text = FIVE.replace("operating,third", 'operating,"thi"rd')
    err = only_problem(write(tmp_path, text), known)
    assert err.row == 4 and "quote mark in the middle of a field" in str(err)


def test_line_break_inside_a_note(tmp_path: Path, known) -> None:
    text = FIVE.replace("operating,second", 'operating,"sec\nond"')
    err = only_problem(write(tmp_path, text), known)
    assert err.row == 3 and "runs over several lines, to line 4" in str(err)


@pytest.mark.parametrize(
    ("new", "words", "fix"),
    [
        ("operating,third, with a comma", "4 fields but the header has 3", "quotes"),
        ("operating,third,extra", "4 fields but the header has 3", "quotes"),
        ("operating", "2 fields but the header has 3", "missing fields"),
    ],
)
def test_field_count_must_match_the_header(tmp_path: Path, known, new, words, fix) -> None:
    err = only_problem(write(tmp_path, FIVE.replace("operating,third", new)), known)
    assert err.row == 4 and words in str(err) and fix in err.fix


def test_duplicate_column(tmp_path: Path, known) -> None:
    text = "area_code,readiness,note,Readiness\nE06000000,operating,,none\n"
    err = only_problem(write(tmp_path, text), known)
    assert err.row == 1 and err.field == "readiness"
    assert "twice (columns 2 and 4)" in str(err)


def test_same_area_through_two_codes(tmp_path: Path, known) -> None:
    """In the synthetic country each sub-ICB location is its whole ICB."""
    text = "area_code,readiness\nE54000000,operating\nE38000000,none\n"
    err = only_problem(write(tmp_path, text), known)
    assert err.row == 3 and err.field == "area_code" and err.value == "E38000000"
    assert "the same area as E54000000 (ICB Q00) on row 2" in str(err)


def test_nested_areas_are_not_the_same_area(tmp_path: Path, known) -> None:
    text = "area_code,readiness\nE54000000,emerging\nE06000000,operating\n"
    assert len(readiness.read_readiness(write(tmp_path, text), known)) == 2


def test_field_over_the_limit(tmp_path: Path, known) -> None:
    note = "x" * (readiness.MAX_FIELD_CHARS + 1)
    err = only_problem(write(tmp_path, f"area_code,readiness,note\nE06000000,none,{note}\n"), known)
    assert err.row == 2 and err.field == "note" and "1,001 characters" in str(err)
    assert len(str(err)) < 300


def test_huge_field_beyond_the_csv_limit(tmp_path: Path, known) -> None:
    note = "y" * 200_000
    err = only_problem(write(tmp_path, f"area_code,readiness,note\nE06000000,none,{note}\n"), known)
    assert err.row == 2 and len(str(err)) < 300


def test_control_character(tmp_path: Path, known) -> None:
    err = only_problem(write(tmp_path, "area_code,readiness,note\nE06000000,none,a\x00b\n"), known)
    assert err.row == 2 and err.field == "note" and "control character" in str(err)


def test_path_is_a_folder(tmp_path: Path, known) -> None:
    err = only_problem(tmp_path, known)
    assert "folder" in str(err)


# ----------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("text", "row", "field", "value", "words"),
    [
        ("", None, None, None, "empty"),
        ("area_code,readiness\n", 2, None, None, "no data rows"),
        (
            "area_code;readiness\nE06000000;operating\n",
            1,
            None,
            "area_code;readiness",
            "semicolons",
        ),
        ("code,readiness\nE06000000,operating\n", 1, "area_code", "code,readiness", "header"),
        (
            "area_code,readiness\nE06000000,operating\nE06000000,none\n",
            3,
            "area_code",
            "E06000000",
            "already given on row 2",
        ),
        (
            "area_code,readiness\nE06000000,operating\nE06000001,ready\n",
            3,
            "readiness",
            "ready",
            "unknown readiness",
        ),
        ("area_code,readiness\n,operating\n", 2, "area_code", "", "empty"),
    ],
)
def test_bad_readiness_files(tmp_path: Path, known, text, row, field, value, words) -> None:
    path = write(tmp_path, text)
    err = only_problem(path, known)
    assert str(path) in str(err)
    assert err.row == row and err.field == field and words in str(err)
    if value is not None:
        assert err.value == value


def test_unknown_codes_all_listed(tmp_path: Path, known) -> None:
    text = "area_code,readiness\nE06000000,operating\nE09999999,operating\nXYZ,none\n"
    path = write(tmp_path, text)
    err = raises(readiness.read_readiness, path, known)
    assert "E09999999 (row 3)" in str(err) and "XYZ (row 4)" in str(err)
    assert err.field == "area_code" and err.row == 3 and err.value == ["E09999999", "XYZ"]


def test_validate_collects_every_problem(tmp_path: Path, known) -> None:
    text = (
        "area_code,readiness,note\nBAD1,operating,\nE06000000,maybe,\nE06000001,none,\n"
        "E06000001,none,\nE06000002,none,a,b\n"
    )
    path = write(tmp_path, text)
    problems = readiness.validate_readiness_file(path, known)
    assert [(p.row, p.field) for p in problems] == [
        (2, "area_code"),
        (3, "readiness"),
        (5, "area_code"),
        (6, None),
    ]
    err = raises(readiness.read_readiness, path, known)
    assert str(err).startswith(f"{path}, row 2, field 'area_code': unknown area code (and 3 more")
    good = write(tmp_path, "area_code,readiness\nE06000000,none\n", "good.csv")
    assert readiness.validate_readiness_file(good, known) == []


def many_unknown(tmp_path: Path, n: int = 100_000) -> Path:
    rows = "".join(f"X{i:07d},operating\n" for i in range(n))
    return write(tmp_path, "area_code,readiness\n" + rows, "many.csv")


def test_100000_unknown_codes_give_a_short_message(tmp_path: Path, known) -> None:
    path = many_unknown(tmp_path)
    err = raises(readiness.read_readiness, path, known)
    assert len(str(err)) < 1_500
    assert str(err).count("(row ") == readiness.MAX_LISTED
    assert "100,000 unknown area codes" in str(err) and "and 99,980 more" in str(err)
    problems = readiness.validate_readiness_file(path, known)
    assert len(problems) == readiness.MAX_LISTED + 1
    assert "and 99,980 more problems" in str(problems[-1])


def test_mixed_problems_are_capped_too(tmp_path: Path, known) -> None:
    rows = "".join(f"E06000000,bad{i}\n" for i in range(30))
    path = write(tmp_path, "area_code,readiness\n" + rows)
    problems = readiness.validate_readiness_file(path, known)
    assert len(problems) == 21 and "and 39 more problems" in str(problems[-1])
    assert "and 58 more problems" in str(raises(readiness.read_readiness, path, known))


# ----------------------------------------------------------------------------- real data


def test_real_codes_same_area(prepared, tmp_path: Path) -> None:
    """An ICB by its ONS code and by its ODS code is one area; a district is not its ICB."""
    _, areas, _ = prepared
    known = readiness.known_area_codes(areas)
    gm = areas[areas["lad24cd"] == "E08000008"].iloc[0]
    assert known.same_area(gm["icb24cd"]) == known.same_area(gm["icb24cdh"])
    assert known.same_area("E08000008") != known.same_area(gm["icb24cd"])
    text = f"area_code,readiness\n{gm['icb24cd']},operating\n{gm['icb24cdh']},none\n"
    err = only_problem(write(tmp_path, text), known)
    assert err.row == 3 and f"the same area as {gm['icb24cd']}" in str(err)


def test_real_examples_are_clean(prepared, mirror_dir: Path) -> None:
    _, areas, _ = prepared
    known = readiness.known_area_codes(areas)
    for name in ("known_services_2019.csv", "known_services_2025.csv"):
        assert readiness.validate_readiness_file(mirror_dir / "readiness" / name, known) == []


# ----------------------------------------------------------------------------- through the CLI


@pytest.fixture(scope="module")
def workdir(prepared, mirror_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workdir like the prepared one: raw = mirror symlinks, processed hard-linked."""
    workspace, _, _ = prepared
    root = tmp_path_factory.mktemp("readiness-cli")
    link_mirror(mirror_dir, root / "data" / "raw")
    manifest = workspace.raw / "manifest.json"
    if manifest.exists():
        shutil.copy2(manifest, root / "data" / "raw")
    shutil.copytree(workspace.processed, root / "data" / "processed", copy_function=os.link)
    return root


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "planner.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )


def test_cli_validate_unclosed_quote(workdir: Path, mirror_dir: Path, tmp_path: Path) -> None:
    lines = (mirror_dir / "readiness/known_services_2019.csv").read_text().splitlines()
    lines[1] = lines[1].replace('"Tameside Early Attachment Service (2019)"', '"Tameside')
    path = write(tmp_path, "\n".join(lines) + "\n")
    done = cli("validate", path, "--workdir", workdir)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"planner: {path}, row 2: a quote opened on row 2 is not closed" in done.stderr
    run = cli("run", "--readiness", path, "--workdir", workdir, "--no-maps")
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert "row 2: a quote opened on row 2" in run.stderr
    assert not (workdir / "exports").exists()


def test_cli_validate_100000_unknown_codes(workdir: Path, tmp_path: Path) -> None:
    path = many_unknown(tmp_path)
    done = cli("validate", path, "--workdir", workdir)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr) < 8_000 and done.stderr.count("\n") < 30
    assert "and 99,980 more problems" in done.stderr
    run = cli("run", "--readiness", path, "--workdir", workdir, "--no-maps")
    assert run.returncode != 0 and len(run.stderr) < 2_000
    assert "100,000 unknown area codes" in run.stderr
