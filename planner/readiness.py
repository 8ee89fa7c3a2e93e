"""Readiness CSV: the user's knowledge of local services, read strictly.

The file is usually typed in a spreadsheet and sent by email, so the reader
is forgiving about Excel's habits (BOM, CRLF, a wholly Windows-1252 file,
extra columns such as `source`) and strict about everything that could change
the plan unseen: an unclosed quote, a row with more or fewer fields than the
header (an unquoted comma in a note), a duplicate column, one area given twice
(by the same code or through two codes for the same small areas, e.g. an ICB's
ONS and ODS codes), a file that mixes UTF-8 with another encoding, a field of
more than MAX_FIELD_CHARS characters. Each problem names the file, the
spreadsheet row (header = row 1), the field, the value and a fix; lists of
problems are capped at MAX_LISTED.

Encoding: UTF-8 (with or without BOM). A file with no valid UTF-8 character
beyond ASCII is read as Windows-1252 (Excel's "CSV" on Windows), as before;
a file that has UTF-8 characters AND bytes that are not UTF-8 is an error,
never decoded as Windows-1252 (that would turn "Café" into "CafÃ©").
A note must stay on one line: a line break inside a field is what an
unclosed quote looks like, so it is an error too.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from planner.config import READINESS_LEVELS
from planner.errors import PlannerError

READINESS_COLUMNS = ["row", "area_code", "readiness", "note", "area_name"]
MAX_FIELD_CHARS = 1_000
MAX_FILE_BYTES = 10_000_000
MAX_LISTED = 20
# area code columns a readiness file may refer to -> their name columns (first = preferred key)
CODE_COLUMNS = [
    ("lad24cd", "lad24nm"),
    ("icb24cd", "icb24nm"),
    ("icb24cdh", "icb24nm"),
    ("sicbl24cd", "sicbl24nm"),
]
FIX_CODES = (
    "use a local authority district (lad24cd, e.g. E08000035), ICB (icb24cd or its ODS "
    "code, e.g. QWO), sub-ICB location (sicbl24cd) or team id"
)
FIX_SAVE = 'save it from your spreadsheet as "CSV UTF-8 (comma delimited)"'


class KnownCodes(dict[str, str]):
    """Codes a readiness file may use -> human name, and which codes name the same area.

    `area_key[code]` is the same for every code covering exactly the same small
    areas (an ICB's ONS and ODS codes; a district that is also a sub-ICB
    location). Codes added later (team ids) are their own area.
    """

    def __init__(
        self, names: Mapping[str, str] | None = None, area_key: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(names or {})
        self.area_key = dict(area_key or {})

    def same_area(self, code: str) -> str:
        return self.area_key.get(code, code)


def known_area_codes(areas: pd.DataFrame, catchments: pd.DataFrame | None = None) -> KnownCodes:
    """Codes a readiness file may use -> human name (LAD, ICB and its ODS code, sub-ICB, team id)."""
    names: dict[str, str] = {}
    key: dict[str, str] = {}
    first_code: dict[bytes, str] = {}
    for code, name in CODE_COLUMNS:
        if code not in areas.columns:
            continue
        labels = areas[name] if name in areas.columns else "sub-ICB location " + areas[code]
        frame = pd.DataFrame({"c": areas[code].astype(str), "n": labels.astype(str)})
        for c, n in frame.drop_duplicates("c").itertuples(index=False):
            names.setdefault(c, n)
        # two codes naming the same LSOAs (an ICB and its ODS code) are one area: the
        # rows each code holds (ascending positions) say which
        for c, rows in sorted(frame.groupby("c").indices.items()):
            members = np.asarray(rows, dtype=np.int64).tobytes()
            key.setdefault(str(c), first_code.setdefault(members, str(c)))
    if catchments is not None:
        for c, n in zip(
            catchments["team_id"].astype(str), catchments["name"].astype(str), strict=True
        ):
            names[c] = n
    return KnownCodes(names, key)


# ----------------------------------------------------------------------------- bytes -> text


def _line_of(raw: bytes, offset: int) -> int:
    return raw[:offset].count(b"\n") + 1


def decode_readiness(path: Path, raw: bytes) -> str:
    """UTF-8 (BOM optional), or wholly Windows-1252; a mix of the two is an error."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise PlannerError(
            "the file is UTF-16 (Excel's 'Unicode Text'), not CSV", file=path, fix=FIX_SAVE
        )
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = exc.start
    lenient = raw.decode("utf-8", errors="replace")
    if any(ord(ch) > 127 and ch != "\ufffd" for ch in lenient):
        line = _line_of(raw, bad)
        raise PlannerError(
            f"byte 0x{raw[bad]:02x} on line {line} is not UTF-8, but the rest of the file is "
            "UTF-8 (reading it as Windows-1252 would garble every accented letter)",
            file=path,
            row=line,
            fix=f"retype the character on line {line}, then {FIX_SAVE}",
        )
    try:
        # No UTF-8 beyond ASCII at all: Excel's "CSV" on Windows (cp1252): accents, £, curly quotes.
        return raw.decode("cp1252")
    except UnicodeDecodeError as exc:
        line = _line_of(raw, exc.start)
        raise PlannerError(
            f"cannot read the text: byte 0x{raw[exc.start]:02x} on line {line} is neither "
            "UTF-8 nor Windows-1252",
            file=path,
            row=line,
            fix=FIX_SAVE,
        ) from None


# ----------------------------------------------------------------------------- text -> records


@dataclass(frozen=True)
class Record:
    """One CSV record: the spreadsheet row it starts on, the last line it reaches, its cells."""

    row: int
    last_line: int
    cells: list[str]


def _too_long(path: Path, row: int, field: str, value: str) -> PlannerError:
    return PlannerError(
        f"{field} is {len(value):,} characters long; at most {MAX_FIELD_CHARS:,} are allowed",
        file=path,
        row=row,
        field=field,
        value=value[:40] + "…",
        fix=f"shorten it to {MAX_FIELD_CHARS:,} characters (keep long notes elsewhere)",
    )


def csv_records(path: Path, text: str) -> Iterable[Record | PlannerError]:
    """Records of the text, or a problem where the CSV syntax breaks (then the next line)."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            message = str(exc)
            if "field larger than field limit" in message:
                yield PlannerError(
                    f"a field is longer than {csv.field_size_limit():,} characters; at most "
                    f"{MAX_FIELD_CHARS:,} are allowed",
                    file=path,
                    row=start,
                    fix=f"shorten it to {MAX_FIELD_CHARS:,} characters (keep long notes elsewhere)",
                )
            elif reader.line_num > start or "unexpected end of data" in message:
                yield PlannerError(
                    f"a quote opened on row {start} is not closed on that line "
                    f"(the field runs on to line {reader.line_num})",
                    file=path,
                    row=start,
                    fix=f'close the quote on row {start} ("…"), or remove the stray quote mark',
                )
            else:
                yield PlannerError(
                    f"a quote mark in the middle of a field ({message})",
                    file=path,
                    row=start,
                    fix='put the whole field in quotes and double any quote inside it ("say '
                    '""hello"""), or remove the quote mark',
                )
            continue
        yield Record(start, reader.line_num, cells)


# ----------------------------------------------------------------------------- checks


@dataclass
class Columns:
    """Where the header puts each column the reader uses, and how many fields a row has."""

    code: int
    readiness: int
    note: int | None
    width: int
    names: list[str]


def _header(path: Path, first: Record) -> Columns:
    raw = first.cells
    names = [h.strip().lower() for h in raw]
    line = ",".join(raw)
    if len(names) == 1 and ";" in raw[0]:
        raise PlannerError(
            "the file is separated by semicolons, not commas",
            file=path,
            row=1,
            value=raw[0],
            fix='save it as "CSV UTF-8 (comma delimited)" or replace the semicolons with commas',
        )
    for i, name in enumerate(names):
        if len(name) > MAX_FIELD_CHARS:
            raise _too_long(path, 1, f"column {i + 1}", name)
        if name and names.index(name) != i:
            raise PlannerError(
                f"the header names column '{name}' twice (columns {names.index(name) + 1} "
                f"and {i + 1})",
                file=path,
                row=1,
                field=name,
                value=line,
                fix=f"delete or rename one of the two '{name}' columns",
            )
    for required in ("area_code", "readiness"):
        if required not in names:
            raise PlannerError(
                f"the header has no '{required}' column",
                file=path,
                row=1,
                field=required,
                value=line,
                fix="the first line must name the columns: area_code,readiness,note",
            )
    return Columns(
        names.index("area_code"),
        names.index("readiness"),
        names.index("note") if "note" in names else None,
        len(names),
        names,
    )


def _check_shape(path: Path, rec: Record, cols: Columns) -> PlannerError | None:
    """Line breaks, field count, length, control characters: the row as a whole."""
    if rec.last_line > rec.row:
        return PlannerError(
            f"a field on row {rec.row} runs over several lines, to line {rec.last_line} "
            "(an unclosed quote, or a line break typed inside a note)",
            file=path,
            row=rec.row,
            fix=f"close the quote on row {rec.row}, or keep the note on one line",
        )
    if len(rec.cells) != cols.width:
        more = len(rec.cells) > cols.width
        return PlannerError(
            f"the row has {len(rec.cells)} fields but the header has {cols.width}",
            file=path,
            row=rec.row,
            value=",".join(rec.cells)[:80],
            fix=(
                'put a note that contains a comma in double quotes ("a, b"), or delete the '
                "extra field"
                if more
                else "add the missing fields (empty ones too, e.g. E08000008,operating,)"
            ),
        )
    for name, value in zip(cols.names, rec.cells, strict=True):
        field = name or "(unnamed column)"
        if len(value) > MAX_FIELD_CHARS:
            return _too_long(path, rec.row, field, value)
        if any(ord(ch) < 32 and ch != "\t" for ch in value):
            return PlannerError(
                "contains a control character",
                file=path,
                row=rec.row,
                field=field,
                value=value[:80],
                fix="retype the field without it",
            )
    return None


@dataclass
class Seen:
    """Areas given so far: code -> row, and same-area key -> (row, code)."""

    codes: dict[str, int]
    areas: dict[str, tuple[int, str]]


@dataclass(frozen=True)
class Lookup:
    """The known codes, and the same codes upper-cased (codes match case-insensitively)."""

    known: Mapping[str, str]
    upper: dict[str, str]

    @classmethod
    def of(cls, known: Mapping[str, str]) -> Lookup:
        return cls(known, {str(k).upper(): str(k) for k in known})

    def same_area(self, code: str) -> str:
        return self.known.same_area(code) if isinstance(self.known, KnownCodes) else code


def _check_values(
    path: Path, row: int, code: str, readiness: str, lookup: Lookup, seen: Seen
) -> tuple[str, list[PlannerError]]:
    """One data row: its code as known (case fixed) and every problem in its values."""
    found: list[PlannerError] = []
    known, upper = lookup.known, lookup.upper

    def problem(message: str, field: str, value: str, fix: str) -> None:
        found.append(PlannerError(message, file=path, row=row, field=field, value=value, fix=fix))

    if not code:
        problem("area_code is empty", "area_code", code, FIX_CODES)
    elif code.upper() not in upper:
        problem("unknown area code", "area_code", code, FIX_CODES)
    else:
        code = upper[code.upper()]
        key = lookup.same_area(code)
        if code in seen.codes:
            problem(
                f"area code already given on row {seen.codes[code]}",
                "area_code",
                code,
                "give each area once (keep the row that is right)",
            )
        elif key in seen.areas:
            other_row, other = seen.areas[key]
            problem(
                f"the same area as {other} ({known[other]}) on row {other_row}: "
                "the two codes cover exactly the same small areas",
                "area_code",
                code,
                "give each area once, by one code (keep the row that is right)",
            )
        else:
            seen.codes[code] = row
            seen.areas[key] = (row, code)
    if readiness.lower() not in READINESS_LEVELS:
        problem(
            "unknown readiness", "readiness", readiness, f"use one of {', '.join(READINESS_LEVELS)}"
        )
    return code, found


# ----------------------------------------------------------------------------- the file


def _read_bytes(path: Path) -> bytes:
    fix = "give the path of a CSV with columns area_code, readiness[, note]"
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise PlannerError("the readiness path is a folder, not a file", file=path, fix=fix)
        if size > MAX_FILE_BYTES:
            raise PlannerError(
                f"the file is {size:,} bytes; a readiness file is at most "
                f"{MAX_FILE_BYTES:,} (a few hundred rows)",
                file=path,
                fix=fix,
            )
        return path.read_bytes()
    except FileNotFoundError:
        raise PlannerError("readiness file not found", file=path, fix=fix) from None
    except OSError as exc:
        raise PlannerError(
            f"cannot read the readiness file: {exc.strerror}",
            file=path,
            fix="check the path and its permissions",
        ) from None


def parse_readiness(
    path: Path, known_codes: Mapping[str, str]
) -> tuple[pd.DataFrame, list[PlannerError]]:
    """Parse and check every row; returns the rows that are good and every problem found.

    Raises a PlannerError when the file cannot be read as a table at all
    (missing, encoding, header).
    """
    text = decode_readiness(path, _read_bytes(path))
    if not text.strip():
        raise PlannerError(
            "the file is empty",
            file=path,
            fix="add a header line 'area_code,readiness,note' and one row per area",
        )
    records = csv_records(path, text)
    errors: list[PlannerError] = []
    first = next(iter(records))
    if isinstance(first, PlannerError):
        raise first
    cols = _header(path, first)
    seen = Seen({}, {})
    lookup = Lookup.of(known_codes)
    good = []
    for rec in records:
        if isinstance(rec, PlannerError):
            errors.append(rec)
            continue
        if not any(c.strip() for c in rec.cells) and rec.last_line == rec.row:
            continue  # blank line (common at the end of spreadsheet exports)
        shape = _check_shape(path, rec, cols)
        if shape is not None:
            errors.append(shape)
            continue
        cells = [c.strip() for c in rec.cells]
        code, found = _check_values(
            path, rec.row, cells[cols.code], cells[cols.readiness], lookup, seen
        )
        errors.extend(found)
        if not found:
            note = cells[cols.note] if cols.note is not None else ""
            good.append((rec.row, code, cells[cols.readiness].lower(), note, known_codes[code]))
    if not good and not errors:
        errors.append(
            PlannerError(
                "the file has a header but no data rows",
                file=path,
                row=2,
                fix="add one row per area: area_code,readiness,note",
            )
        )
    frame = pd.DataFrame(good, columns=READINESS_COLUMNS).astype({"row": "int64"})
    return frame, errors


def capped(path: Path, errors: list[PlannerError]) -> list[PlannerError]:
    """The first MAX_LISTED problems, then one line saying how many more there are."""
    if len(errors) <= MAX_LISTED:
        return errors
    more = len(errors) - MAX_LISTED
    return [
        *errors[:MAX_LISTED],
        PlannerError(
            f"and {more:,} more problems (only the first {MAX_LISTED} are listed)",
            file=path,
            fix="correct the problems above and check the file again",
        ),
    ]


def validate_readiness_file(path: str | Path, known_codes: Mapping[str, str]) -> list[PlannerError]:
    """Problems in a readiness CSV, at most MAX_LISTED + 1 (empty list: the file is good)."""
    path = Path(path)
    try:
        _, errors = parse_readiness(path, known_codes)
    except PlannerError as exc:
        return [exc]
    return capped(path, errors)


def read_readiness(path: str | Path, known_codes: Mapping[str, str]) -> pd.DataFrame:
    """Read a readiness CSV: columns row, area_code, readiness, note, area_name.

    `known_codes` maps every acceptable code to its name (see known_area_codes).
    Unknown codes are reported together (the first MAX_LISTED, then a count);
    otherwise the first problem is raised, saying how many more there are.
    """
    path = Path(path)
    frame, errors = parse_readiness(path, known_codes)
    if not errors:
        return frame
    unknown = [e for e in errors if e.detail == "unknown area code"]
    if len(unknown) > 1 and len(unknown) == len(errors):
        shown = unknown[:MAX_LISTED]
        listing = ", ".join(f"{e.value} (row {e.row})" for e in shown)
        if len(unknown) > len(shown):
            listing += f" and {len(unknown) - len(shown):,} more"
        raise PlannerError(
            f"{len(unknown):,} unknown area codes: {listing}",
            file=path,
            row=unknown[0].row,
            field="area_code",
            value=[e.value for e in shown],
            fix=FIX_CODES,
        )
    first = errors[0]
    if len(errors) == 1:
        raise first
    raise PlannerError(
        f"{first.detail} (and {len(errors) - 1:,} more problems: `planner validate {path}` "
        "lists them)",
        file=first.file,
        row=first.row,
        field=first.field,
        value=first.value,
        fix=first.fix,
    )
