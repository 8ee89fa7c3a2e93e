"""Get every input into the raw directory: from the offline mirror or from ONS/MHCLG.

Two modes share one contract: after `fetch`, `raw_dir/manifest.json` records the
sha256, size, source and fetch time of every file, and each file is either the
complete, checked data or absent. Nothing is ever half-written or replaced by a
bad download (every write goes to a temporary sibling and is renamed in place
only after its checks pass), and files whose checksum already matches are not
fetched again.

Online, ArcGIS FeatureServer services are paged (`resultOffset` /
`resultRecordCount`, ordered by the object-id field) and every feature must
arrive exactly once, matching `returnCountOnly`; a repeat or a shortfall is an
error, never silently de-duplicated. Plain files are streamed and checked
against Content-Length, emptiness, HTML error pages and any expected sha256.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import logging
import re
import shutil
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import requests
from requests.adapters import HTTPAdapter
from tqdm import tqdm
from urllib3.util.retry import Retry

from planner.errors import PlannerError
from planner.fsutil import atomic_file, sha256_file
from planner.sources import ARCGIS_BASE, DATASETS, LOOKUP_COLUMNS, Dataset, OnlinePart, get

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
RETRY_STATUSES = (429, 500, 502, 503, 504)
MAX_RETRY_AFTER = 120  # seconds; a server asking for longer is treated as down
USER_AGENT = "planner (parent-infant team coverage planner; python-requests)"
_CHUNK = 1 << 16
_HEAD = 1 << 16  # bytes kept from the start of a file for HTML sniffing and the CSV header
RETRY_FIX = "retry later, or use `planner fetch --mirror <dir>` with the offline mirror"


# --------------------------------------------------------------------------- manifest


def load_manifest(raw_dir: Path) -> dict[str, Any]:
    """The raw directory's manifest.json, or an empty one."""
    path = Path(raw_dir) / MANIFEST_NAME
    if not path.is_file():
        return {"format": MANIFEST_FORMAT, "files": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise PlannerError(
            f"manifest is not valid JSON ({exc})",
            file=path,
            fix="delete it and run `planner fetch` again (files are re-checked, not re-downloaded)",
        ) from None
    data.setdefault("files", {})
    data["format"] = MANIFEST_FORMAT
    return data


def write_manifest(raw_dir: Path, manifest: Mapping[str, Any]) -> None:
    """Write manifest.json atomically with sorted keys, so equal content gives equal bytes."""
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    with atomic_file(Path(raw_dir) / MANIFEST_NAME, "w") as handle:
        handle.write(text)


def parse_mirror_manifest(path: Path) -> dict[str, str]:
    """Map `relative path → sha256` from the mirror's MANIFEST.md.

    Sections start with a heading "### `path`"; the file's checksum is on the
    "- size: …; sha256: `…`" line (other sha256 mentions describe upstream files).
    """
    if not Path(path).is_file():
        return {}
    result: dict[str, str] = {}
    current: str | None = None
    fallback: dict[str, str] = {}
    heading = re.compile(r"^###\s+`([^`]+)`")
    size_line = re.compile(r"^\s*-\s*size:.*?sha256:\s*`([0-9a-fA-F]{64})`")
    any_sha = re.compile(r"sha256:\s*`([0-9a-fA-F]{64})`")
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if m := heading.match(line):
            current = m.group(1).strip()
            continue
        if line.startswith("## "):
            current = None
            continue
        if current is None:
            continue
        if m := size_line.match(line):
            result[current] = m.group(1).lower()
        elif (m := any_sha.search(line)) and current not in fallback:
            fallback[current] = m.group(1).lower()
    for key, value in fallback.items():
        result.setdefault(key, value)
    return result


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _record(path: Path, sha: str, source: str, dataset: str, part: str | None) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "dataset": dataset,
        "fetched_at": _now(),
        "sha256": sha,
        "size": path.stat().st_size,
        "source": source,
    }
    if part and part != dataset:
        rec["part"] = part
    return rec


def _up_to_date(path: Path, want: str | None) -> bool:
    return want is not None and path.is_file() and sha256_file(path) == want


# --------------------------------------------------------------------------- fetch


def fetch(
    raw_dir: Path,
    mirror: Path | None = None,
    names: Iterable[str] | None = None,
    session: requests.Session | None = None,
    base_url: str = ARCGIS_BASE,
    progress: bool = True,
    page_size: int = 2000,
    timeout: float = 60,
    *,
    retries: int = 5,
    backoff_factor: float = 0.5,
    datasets: Mapping[str, Dataset] | None = None,
) -> dict[str, Any]:
    """Bring the selected datasets (default: all) into `raw_dir`; return the manifest.

    With `mirror`, copy each dataset's file from the offline mirror (checked
    against the mirror's MANIFEST.md); otherwise use what is already in `raw_dir`
    in the mirror layout and download the online parts of the rest.
    `datasets` replaces the registry (tests); `retries`/`backoff_factor` tune the
    urllib3 Retry policy.
    """
    raw_dir = Path(raw_dir)
    registry = dict(DATASETS if datasets is None else datasets)
    selected = [get(n, registry) for n in (sorted(registry) if names is None else names)]
    raw_dir.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(raw_dir)
    show = progress and sys.stderr.isatty()
    try:
        if mirror is not None:
            _fetch_mirror(raw_dir, Path(mirror), selected, manifest)
        else:
            own = session is None
            sess = session or make_session(retries=retries, backoff_factor=backoff_factor)
            try:
                fetcher = _Online(sess, base_url, page_size, timeout, show, retries)
                for dataset in selected:
                    if not _keep_present(raw_dir, dataset, manifest):
                        fetcher.fetch_dataset(raw_dir, dataset, manifest)
            finally:
                if own:
                    sess.close()
    finally:
        # keep records of everything that did succeed, even when a later file failed
        write_manifest(raw_dir, manifest)
    return manifest


def _keep_present(raw_dir: Path, dataset: Dataset, manifest: dict[str, Any]) -> bool:
    """Online mode: a dataset already in raw_dir in the mirror layout is used, not downloaded.

    Readers prefer the mirror-layout file (`sources.locate`), so downloading the
    online parts beside it would change nothing but cost the network (and fail
    offline after a `fetch --mirror`). The manifest is brought up to date with
    the file's real sha256, so the stage cache notices a file replaced by hand;
    a file that no longer matches its record is used with a warning.
    """
    rel = dataset.mirror_path
    dest = raw_dir / rel
    if not dest.is_file():
        return False
    have = sha256_file(dest)
    rec = manifest["files"].get(rel)
    if rec and rec.get("sha256") == have:
        log.debug("%s already present", rel)
        return True
    if rec:
        log.warning(
            "%s changed since it was fetched (sha256 %s, was %s); using it as it is "
            "(run `planner fetch --mirror <dir>` or delete it to get the published file)",
            rel,
            have[:12],
            str(rec.get("sha256"))[:12],
        )
        source = f"changed in place (fetched from {rec.get('source')})"
    else:
        log.info("%s found in the raw folder; using it", rel)
        source = "found in the raw folder"
    manifest["files"][rel] = _record(dest, have, source, dataset.name, None)
    return True


# --------------------------------------------------------------------------- mirror


def _fetch_mirror(
    raw_dir: Path, mirror: Path, selected: list[Dataset], manifest: dict[str, Any]
) -> None:
    if not mirror.is_dir():
        raise PlannerError(
            "mirror folder not found",
            file=mirror,
            fix="pass the open-data folder that holds MANIFEST.md to --mirror",
        )
    listed = parse_mirror_manifest(mirror / "MANIFEST.md")
    for dataset in selected:
        rel = dataset.mirror_path
        src = mirror / rel
        if not src.is_file():
            if dataset.required:
                raise PlannerError(
                    f"the mirror has no file for required dataset '{dataset.name}'",
                    file=src,
                    fix="check --mirror points at the open-data folder, or fetch online",
                )
            log.info("mirror has no %s (optional dataset %s); skipped", rel, dataset.name)
            continue
        dest = raw_dir / rel
        want = listed.get(rel)
        have = sha256_file(dest) if dest.is_file() else None
        if have is not None and have == (want or sha256_file(src)):
            log.debug("%s already up to date", rel)
            rec = manifest["files"].get(rel)
            if not rec or rec.get("sha256") != have:
                manifest["files"][rel] = _record(dest, have, str(src), dataset.name, None)
            continue
        sha = _copy_checked(src, dest, want)
        manifest["files"][rel] = _record(dest, sha, str(src), dataset.name, None)
        log.info("copied %s", rel)


def _copy_checked(src: Path, dest: Path, want: str | None) -> str:
    """Copy src to dest through a temporary sibling; refuse a checksum mismatch."""
    digest = hashlib.sha256()
    with atomic_file(dest, "wb") as out, open(src, "rb") as inp:
        while block := inp.read(1 << 20):
            digest.update(block)
            out.write(block)
        sha = digest.hexdigest()
        if want is not None and sha != want:
            raise PlannerError(
                f"mirror file's sha256 {sha} differs from MANIFEST.md ({want}); not copied",
                file=src,
                fix="the mirror copy is damaged or changed: restore it from its source, "
                "or fetch online",
            )
    shutil.copystat(src, dest)
    return sha


# --------------------------------------------------------------------------- online


def make_session(retries: int = 5, backoff_factor: float = 0.5) -> requests.Session:
    """A Session that retries GETs on 429/5xx and connection trouble, honouring Retry-After."""
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff_factor,
        backoff_max=60,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET"}),
        respect_retry_after_header=True,
        retry_after_max=MAX_RETRY_AFTER,
        raise_on_status=True,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def _require_fields(
    what: str, problem: str, expected: Iterable[str], present: list[str], source: str
) -> None:
    """A download whose columns are not the registered ones means the publisher changed it."""
    missing = [c for c in expected if c not in present]
    if missing:
        raise PlannerError(
            f"{what}: {problem} {missing[0]!r} (found: {', '.join(present[:12])})",
            file=source,
            field=missing[0],
            fix="the publisher changed the layout: update planner/sources.py, or use --mirror",
        )


def _looks_like_html(head: bytes) -> bool:
    start = head.lstrip()[:64].lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


class _Online:
    """One online fetch run: a session, its limits, and the per-part downloaders."""

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        page_size: int,
        timeout: float,
        show: bool,
        retries: int,
    ) -> None:
        self.session = session
        self.base_url = base_url
        self.page_size = max(1, int(page_size))
        self.timeout = (min(10.0, float(timeout)), float(timeout))
        self.show = show
        self.retries = retries

    # ---- datasets

    def fetch_dataset(self, raw_dir: Path, dataset: Dataset, manifest: dict[str, Any]) -> None:
        if not dataset.online:
            log.info("dataset %s has no online source; skipped (use --mirror)", dataset.name)
            return
        changed = False
        for part in dataset.online:
            changed |= self.fetch_part(raw_dir, dataset, part, manifest)
        if dataset.assembled_online:
            self._assemble(raw_dir, dataset, manifest, changed)

    def fetch_part(
        self, raw_dir: Path, dataset: Dataset, part: OnlinePart, manifest: dict[str, Any]
    ) -> bool:
        """Download one part unless its file already matches; True when it was (re)written."""
        rel = part.download_path
        dest = raw_dir / rel
        rec = manifest["files"].get(rel) or {}
        want = part.expected_sha256 or rec.get("sha256")
        source = part.source(self.base_url)
        if _up_to_date(dest, want):
            log.debug("%s already up to date", rel)
            if rec.get("sha256") != want:
                manifest["files"][rel] = _record(dest, str(want), source, dataset.name, part.name)
            return False
        if part.kind == "file":
            sha = self.download_file(part, dest)
        else:
            sha = self.download_arcgis(part, dest)
        manifest["files"][rel] = _record(dest, sha, source, dataset.name, part.name)
        log.info("downloaded %s", rel)
        return True

    def _assemble(
        self, raw_dir: Path, dataset: Dataset, manifest: dict[str, Any], changed: bool
    ) -> None:
        rel = dataset.mirror_path
        dest = raw_dir / rel
        rec = manifest["files"].get(rel) or {}
        if not changed and _up_to_date(dest, rec.get("sha256")):
            return
        frames = {}
        for part in dataset.online:
            path = raw_dir / part.download_path
            frames[part.name] = (path, pd.read_csv(path, dtype=str, keep_default_na=False))
        table = assemble_lookup(frames)
        with atomic_file(dest, "w") as handle:
            table.to_csv(handle, index=False, lineterminator="\n")
        source = "assembled from " + ", ".join(p.download_path for p in dataset.online)
        manifest["files"][rel] = _record(dest, sha256_file(dest), source, dataset.name, None)

    # ---- HTTP

    def _get(self, url: str, params: Mapping[str, Any] | None, what: str, stream: bool = False):
        try:
            response = self.session.get(url, params=params, timeout=self.timeout, stream=stream)
        except requests.exceptions.RetryError as exc:
            raise PlannerError(
                f"{what}: the server kept answering with an error status after "
                f"{self.retries} retries ({_reason(exc)})",
                file=url,
                fix=RETRY_FIX,
            ) from None
        except requests.exceptions.RequestException as exc:
            raise PlannerError(
                f"{what}: {_reason(exc, self.timeout[1])}", file=url, fix=RETRY_FIX
            ) from None
        if response.status_code != 200:
            response.close()
            fix = RETRY_FIX
            if response.status_code in (400, 404, 410):
                fix = (
                    "the service or file may have moved: check the ONS/gov.uk page for the "
                    "current name and update planner/sources.py, or use --mirror"
                )
            raise PlannerError(
                f"{what}: HTTP {response.status_code} {response.reason}",
                file=url,
                fix=fix,
            )
        return response

    def _json(self, url: str, params: Mapping[str, Any], what: str) -> dict[str, Any]:
        response = self._get(url, params, what)
        try:
            data = response.json()
        except (ValueError, requests.exceptions.RequestException):
            kind = "an HTML page" if _looks_like_html(response.content[:512]) else "not JSON"
            raise PlannerError(
                f"{what}: the answer is {kind} (first bytes {response.content[:60]!r})",
                file=response.url,
                fix=RETRY_FIX,
            ) from None
        if not isinstance(data, dict):
            raise PlannerError(f"{what}: unexpected JSON answer", file=response.url, fix=RETRY_FIX)
        if "error" in data:
            err = data["error"] or {}
            raise PlannerError(
                f"{what}: ArcGIS error {err.get('code')}: {err.get('message')} "
                f"{'; '.join(map(str, err.get('details') or []))}".rstrip(),
                file=response.url,
                fix=RETRY_FIX,
            )
        return data

    # ---- plain files

    def download_file(self, part: OnlinePart, dest: Path) -> str:
        url = str(part.url)
        what = f"download of '{part.name}'"
        response = self._get(url, None, what, stream=True)
        try:
            with response, atomic_file(dest, "wb") as out:
                ctype = response.headers.get("Content-Type", "")
                if "text/html" in ctype and part.format not in ("html", "htm"):
                    raise PlannerError(
                        f"{what}: the server sent an HTML page ({ctype}) instead of {part.format}",
                        file=url,
                        fix="the link has probably moved: get the current one from the "
                        "publisher's page, or use --mirror",
                    )
                length = response.headers.get("Content-Length")
                encoded = response.headers.get("Content-Encoding", "identity") != "identity"
                expected = int(length) if (length and length.isdigit() and not encoded) else None
                digest = hashlib.sha256()
                size = 0
                head = b""
                with tqdm(
                    total=expected, unit="B", unit_scale=True, desc=part.name, disable=not self.show
                ) as bar:
                    for chunk in response.iter_content(_CHUNK):
                        if len(head) < _HEAD:
                            head += chunk[: _HEAD - len(head)]
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                        bar.update(len(chunk))
                sha = digest.hexdigest()
                self._check_file(part, url, what, size, expected, head, sha)
        except requests.exceptions.RequestException as exc:
            raise PlannerError(
                f"{what}: the transfer broke off ({_reason(exc, self.timeout[1])}); nothing kept",
                file=url,
                fix=RETRY_FIX,
            ) from None
        return sha

    def _check_file(
        self,
        part: OnlinePart,
        url: str,
        what: str,
        size: int,
        expected: int | None,
        head: bytes,
        sha: str,
    ) -> None:
        if size == 0:
            raise PlannerError(
                f"{what}: the server sent an empty (0-byte) file", file=url, fix=RETRY_FIX
            )
        if expected is not None and size != expected:
            raise PlannerError(
                f"{what}: truncated, got {size:,} of {expected:,} bytes (Content-Length)",
                file=url,
                fix=RETRY_FIX,
            )
        if _looks_like_html(head):
            raise PlannerError(
                f"{what}: the server sent an HTML page instead of {part.format}",
                file=url,
                fix="the link has probably moved: get the current one from the publisher's "
                "page, or use --mirror",
            )
        if part.expected_sha256 and sha != part.expected_sha256:
            raise PlannerError(
                f"{what}: sha256 {sha} differs from the expected {part.expected_sha256}",
                file=url,
                fix="the publisher may have revised the file: check it and update "
                "expected_sha256 in planner/sources.py, or use --mirror",
            )
        if part.format == "csv" and part.columns:
            text = head.decode("utf-8-sig", errors="replace")
            if "\n" not in text:  # header longer than what we kept: cannot judge
                return
            header = next(csv.reader([text.splitlines()[0]]), [])
            _require_fields(what, "header lacks column", part.columns, header, url)

    # ---- ArcGIS

    def download_arcgis(self, part: OnlinePart, dest: Path) -> str:
        service = str(part.service)
        what = f"ArcGIS service {service}"
        layer = self._json(part.layer_url(self.base_url), {"f": "json"}, what)
        oid = layer.get("objectIdField") or next(
            (f["name"] for f in layer.get("fields") or [] if f.get("type") == "esriFieldTypeOID"),
            None,
        )
        if not oid:
            raise PlannerError(
                f"{what}: layer description names no object-id field",
                file=part.layer_url(self.base_url),
                fix=RETRY_FIX,
            )
        page = min(self.page_size, int(layer.get("maxRecordCount") or self.page_size))
        query = part.query_url(self.base_url)
        count_data = self._json(
            query, {"where": "1=1", "returnCountOnly": "true", "f": "json"}, what
        )
        count = count_data.get("count")
        if not isinstance(count, int) or count < 0:
            raise PlannerError(f"{what}: returnCountOnly gave no count", file=query, fix=RETRY_FIX)
        geojson = part.kind == "layer"
        base_params: dict[str, Any] = {
            "where": "1=1",
            "outFields": "*",
            "orderByFields": f"{oid} ASC",
            "resultRecordCount": page,
            "f": "geojson" if geojson else "json",
            "returnGeometry": "true" if geojson else "false",
        }
        if geojson:
            base_params["outSR"] = "4326"
        features: dict[Any, dict[str, Any]] = {}
        fields: list[str] | None = None
        offset = 0
        max_pages = count // max(page, 1) + 3
        with tqdm(total=count, unit="feature", desc=service, disable=not self.show) as bar:
            for page_no in range(max_pages + 1):
                if page_no == max_pages:
                    raise PlannerError(
                        f"{what}: still paging after {max_pages} pages for {count} features",
                        file=query,
                        fix=RETRY_FIX,
                    )
                data = self._json(query, {**base_params, "resultOffset": offset}, what)
                batch = data.get("features")
                if not isinstance(batch, list):
                    raise PlannerError(
                        f"{what}: page without 'features'", file=query, fix=RETRY_FIX
                    )
                if fields is None and not geojson:
                    fields = [f["name"] for f in data.get("fields") or [] if "name" in f]
                for feature in batch:
                    key = _object_id(feature, oid, geojson)
                    if key is None:
                        raise PlannerError(
                            f"{what}: a feature at offset {offset} has no {oid}",
                            file=query,
                            fix=RETRY_FIX,
                        )
                    if key in features:
                        raise PlannerError(
                            f"{what}: feature {oid}={key} arrived twice (page at offset "
                            f"{offset}); the paging is inconsistent",
                            file=query,
                            fix="retry later (the service may be updating), or use --mirror",
                        )
                    features[key] = feature
                offset += len(batch)
                bar.update(len(batch))
                exceeded = data.get("exceededTransferLimit")
                if exceeded is None:
                    exceeded = (data.get("properties") or {}).get("exceededTransferLimit", False)
                if not batch or not exceeded:
                    break
        if len(features) != count:
            raise PlannerError(
                f"{what}: got {len(features)} features but returnCountOnly said {count}",
                file=query,
                fix="retry later (the service may be updating), or use --mirror",
            )
        ordered = [features[k] for k in sorted(features, key=_sort_key)]
        columns = _columns_of(ordered, geojson, fields)
        _require_fields(what, "features lack field", part.columns, columns, query)
        payload = _geojson_bytes(ordered) if geojson else _csv_bytes(ordered, columns)
        with atomic_file(dest, "wb") as out:
            out.write(payload)
        return hashlib.sha256(payload).hexdigest()


def _object_id(feature: Mapping[str, Any], oid: str, geojson: bool) -> Any:
    if geojson:
        props = feature.get("properties") or {}
        return props.get(oid, feature.get("id"))
    return (feature.get("attributes") or {}).get(oid)


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int | float) else (1, str(value))


def _columns_of(
    features: list[dict[str, Any]], geojson: bool, fields: list[str] | None
) -> list[str]:
    if fields:
        return fields
    key = "properties" if geojson else "attributes"
    seen: dict[str, None] = {}
    for feature in features:
        for name in feature.get(key) or {}:
            seen.setdefault(name, None)
    return list(seen)


def _geojson_bytes(features: list[dict[str, Any]]) -> bytes:
    collection = {"type": "FeatureCollection", "features": features}
    return (json.dumps(collection, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def _csv_bytes(features: list[dict[str, Any]], columns: list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for feature in features:
        attrs = feature.get("attributes") or {}
        writer.writerow(["" if attrs.get(c) is None else attrs.get(c) for c in columns])
    return buffer.getvalue().encode("utf-8")


def _reason(exc: BaseException, timeout: float | None = None) -> str:
    """A short human reason for a requests exception (timeouts said plainly)."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.Timeout) or "timed out" in text.lower():
        return f"no answer within {timeout:g} s (timeout)" if timeout else "timed out"
    if "reset" in text.lower():
        return "connection reset by the server"
    if "IncompleteRead" in text or "incomplete" in text.lower():
        return "the body ended before Content-Length bytes arrived"
    return text if len(text) < 300 else text[:297] + "..."


# --------------------------------------------------------------------------- lookup


def assemble_lookup(frames: Mapping[str, tuple[Path, pd.DataFrame]]) -> pd.DataFrame:
    """Join the online lookup parts into the mirror's one-row-per-LSOA layout.

    `frames` maps part name → (file, table). Each join must be one-to-one and
    leave no gaps; otherwise the error names the part file and the first code.
    """

    lookup = DATASETS["lookup"]

    def pick(name: str, key: str, present: Iterable[str] = ()) -> pd.DataFrame:
        """The part's registered columns (less those already joined), one row per `key`."""
        path, df = frames[name]
        cols = [c for c in lookup.part(name).columns if c == key or c not in set(present)]
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise PlannerError(
                f"lookup part '{name}' lacks column {missing[0]!r}",
                file=path,
                field=missing[0],
                fix="delete it and run `planner fetch` again, or use --mirror",
            )
        out = df[cols].drop_duplicates()
        dup = out[key][out[key].duplicated()]
        if len(dup):
            raise PlannerError(
                f"lookup part '{name}' maps {key} {dup.iloc[0]} to more than one row",
                file=path,
                field=key,
                value=dup.iloc[0],
                fix="ONS changed the lookup: check it, or use --mirror",
            )
        return out

    table = pick("lookup_lsoa_icb", "LSOA21CD")
    table = table[table["LSOA21CD"].str.startswith("E")]
    joins = [
        ("lookup_lsoa_msoa", "LSOA21CD"),
        ("lookup_lsoa_ward_lad", "LSOA21CD"),
        ("lookup_lad_rgn", "LAD24CD"),
        ("lookup_icb_nhser", "ICB24CD"),
    ]
    for name, key in joins:
        right = pick(name, key, present=table.columns)
        table = table.merge(right, on=key, how="left", validate="many_to_one")
        first_value = next(c for c in right.columns if c != key)
        gap = table[first_value].isna() | (table[first_value] == "")
        if gap.any():
            code = table.loc[gap, key].iloc[0]
            raise PlannerError(
                f"lookup part '{name}' has no row for {key} {code} ({int(gap.sum())} missing)",
                file=frames[name][0],
                field=key,
                value=code,
                fix="the lookups are of different vintages: re-fetch them, or use --mirror",
            )
    return table[list(LOOKUP_COLUMNS)].sort_values("LSOA21CD", ignore_index=True)
