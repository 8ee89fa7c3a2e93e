"""Get every input into the raw directory: from the offline mirror or from ONS/MHCLG.

Two modes share one contract: after `fetch`, `raw_dir/manifest.json` records the
sha256, size, source and fetch time of every file, and each file is either the
complete, checked data or absent. Nothing is ever half-written or replaced by a
bad download (every write goes to a temporary sibling and is renamed in place
only after its checks pass), and files whose checksum already matches are not
fetched again.

Only what the plan reads is fetched by default (`sources.PLAN_INPUTS`); the
NHS region boundaries are downloaded only when the ICB → region lookup service
fails and the region must be derived from them. Every selected dataset is
tried, then every failure is reported together, each with the sources.py entry
to edit. A mirror is verified against its MANIFEST.md (refused without one,
unless `verify=False`); online, ArcGIS services keep England's rows only and
plain files are checked for length, HTML error pages and known checksums (a
differing checksum is a publisher's revision: a warning, not an error).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import requests

from planner import inputs, lookup, sources, web
from planner.errors import PlannerError
from planner.fsutil import atomic_file, sha256_file
from planner.sources import ARCGIS_BASE, DATASETS, Dataset, OnlinePart, get

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
USER_AGENT = web.USER_AGENT


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


def _record(
    path: Path, sha: str, source: str, dataset: Dataset, part: str | None
) -> dict[str, Any]:
    """A manifest entry: what the file is (dataset, vintage), where it came from, its checksum."""
    rec: dict[str, Any] = {
        "dataset": dataset.name,
        "fetched_at": _now(),
        "sha256": sha,
        "size": path.stat().st_size,
        "source": source,
        "vintage": dataset.vintage,
    }
    if part and part != dataset.name:
        rec["part"] = part
    return rec


def _up_to_date(path: Path, want: str | None) -> bool:
    return want is not None and path.is_file() and sha256_file(path) == want


@dataclass(frozen=True)
class Failure:
    """One dataset that could not be fetched, and where its description lives."""

    dataset: Dataset
    part: OnlinePart | None
    error: PlannerError

    def line(self, with_fix: bool) -> str:
        error = self.error
        if not with_fix:
            error = PlannerError(
                error.detail, file=error.file, row=error.row, field=error.field, value=error.value
            )
        return f"  - {self.dataset.name} [{self.dataset.entry(self.part)}]: {error}"


def failure_report(failures: list[Failure], selected: int) -> PlannerError:
    """One error listing every failed dataset; a fix they all share is said once, at the end."""
    fixes = {f.error.fix for f in failures}
    common = fixes.pop() if len(fixes) == 1 else None
    lines = [f.line(with_fix=common is None) for f in failures]
    return PlannerError(
        f"{len(failures)} of {selected} datasets could not be fetched "
        "(files already fetched are kept):\n" + "\n".join(lines),
        fix=(common + "; then run `planner fetch` again")
        if common
        else "fix each as its line says, then run `planner fetch` again",
    )


# --------------------------------------------------------------------------- fetch


def fetch(
    raw_dir: Path,
    mirror: Path | None = None,
    names: Iterable[str] | None = None,
    session: requests.Session | None = None,
    base_url: str = ARCGIS_BASE,
    progress: bool = True,
    page_size: int = 2000,
    timeout: float = 30,
    *,
    retries: int = 5,
    backoff_factor: float = 0.5,
    deadline: float = 120,
    file_deadline: float = 1800,
    force: bool = False,
    verify: bool = True,
    datasets: Mapping[str, Dataset] | None = None,
) -> dict[str, Any]:
    """Bring the selected datasets (default: those the plan reads) into `raw_dir`.

    With `mirror`, copy each dataset's file from the offline mirror, checked
    against the mirror's MANIFEST.md (`verify=False` skips that check, with a
    warning); otherwise use what is already in `raw_dir` in the mirror layout
    and download the online parts of the rest. `force` fetches every selected
    dataset again, replacing what raw_dir holds (e.g. an HTML page saved in
    place of a file). Network limits: `timeout` s without data fails a read;
    one ArcGIS request, retries included, ends within `deadline` s and one
    file download within `file_deadline` s; a host that refuses the connection
    fails at once. Every dataset is tried; then one PlannerError lists every
    failure with the sources.py entry to edit. Returns the manifest.
    `datasets` replaces the registry (tests).
    """
    raw_dir = Path(raw_dir)
    registry = dict(DATASETS if datasets is None else datasets)
    if names is None:
        names = [n for n, d in registry.items() if d.purpose == "plan"]
    selected = [get(n, registry) for n in names]
    raw_dir.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(raw_dir)
    failures: list[Failure] = []
    try:
        if mirror is not None:
            failures = _fetch_mirror(raw_dir, Path(mirror), selected, manifest, force, verify)
        else:
            limits = web.Limits(timeout, deadline, file_deadline, retries, backoff_factor)
            own = session is None
            sess = session or web.make_session()
            try:
                client = web.Client(sess, limits, progress and sys.stderr.isatty())
                online = _Online(client, base_url, page_size, raw_dir, manifest, registry)
                failures = online.fetch_all(selected, force)
            finally:
                if own:
                    sess.close()
    finally:
        # keep records of everything that did succeed, even when another dataset failed
        write_manifest(raw_dir, manifest)
    if failures:
        raise failure_report(failures, len(selected))
    return manifest


def bad_content(path: Path) -> str | None:
    """Why a raw file cannot be data (empty, or an HTML page), or None."""
    if path.stat().st_size == 0:
        return "is empty (0 bytes)"
    with open(path, "rb") as handle:
        if inputs.looks_like_html(handle.read(512)):
            return "is an HTML page, not data"
    return None


# --------------------------------------------------------------------------- mirror


def _fetch_mirror(
    raw_dir: Path,
    mirror: Path,
    selected: list[Dataset],
    manifest: dict[str, Any],
    force: bool,
    verify: bool,
) -> list[Failure]:
    if not mirror.is_dir():
        raise PlannerError(
            "mirror folder not found",
            file=mirror,
            fix="pass the open-data folder that holds MANIFEST.md to --mirror",
        )
    listing = mirror / "MANIFEST.md"
    if not verify:
        log.warning(
            "mirror files are NOT verified (--no-verify): %s is not checked against a MANIFEST.md",
            mirror,
        )
        listed: dict[str, str] = {}
    elif not listing.is_file():
        raise PlannerError(
            "the mirror has no MANIFEST.md, so its files cannot be verified; refused",
            file=listing,
            fix="point --mirror at the open-data folder that holds MANIFEST.md, or pass "
            "--no-verify to copy unverified files at your own risk",
        )
    else:
        listed = parse_mirror_manifest(listing)
    failures = []
    for dataset in selected:
        try:
            _copy_dataset(raw_dir, mirror, dataset, manifest, listed, force, verify)
        except PlannerError as exc:
            failures.append(Failure(dataset, None, exc))
    return failures


def _copy_dataset(
    raw_dir: Path,
    mirror: Path,
    dataset: Dataset,
    manifest: dict[str, Any],
    listed: dict[str, str],
    force: bool,
    verify: bool,
) -> None:
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
        return
    want = listed.get(rel)
    if verify and want is None:
        raise PlannerError(
            "the file is not listed with a sha256 in the mirror's MANIFEST.md; not copied",
            file=src,
            fix="add its '- size: …; sha256: `…`' line under a '### `"
            + rel
            + "`' heading in MANIFEST.md, or pass --no-verify",
        )
    dest = raw_dir / rel
    have = sha256_file(dest) if dest.is_file() and not force else None
    if have is not None and have == (want or sha256_file(src)):
        log.debug("%s already up to date", rel)
        rec = manifest["files"].get(rel)
        if not rec or rec.get("sha256") != have:
            manifest["files"][rel] = _record(dest, have, str(src), dataset, None)
        return
    sha = _copy_checked(src, dest, want)
    manifest["files"][rel] = _record(dest, sha, str(src), dataset, None)
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


class _Online:
    """One online fetch run: the HTTP client, where files go, and the manifest."""

    def __init__(
        self,
        client: web.Client,
        base_url: str,
        page_size: int,
        raw_dir: Path,
        manifest: dict[str, Any],
        registry: Mapping[str, Dataset],
    ) -> None:
        self.client = client
        self.base_url = base_url
        self.page_size = max(1, int(page_size))
        self.raw_dir = raw_dir
        self.manifest = manifest
        self.registry = registry

    def fetch_all(self, selected: list[Dataset], force: bool) -> list[Failure]:
        failures = []
        for dataset in selected:
            try:
                if force or not self.keep_present(dataset):
                    self.fetch_dataset(dataset, force)
            except _PartFailed as failed:
                failures.append(Failure(dataset, failed.part, failed.error))
            except PlannerError as exc:
                failures.append(Failure(dataset, None, exc))
        return failures

    def keep_present(self, dataset: Dataset) -> bool:
        """A dataset already in raw_dir in the mirror layout is used, not downloaded.

        Readers prefer the mirror-layout file (`sources.locate`), so downloading
        the online parts beside it would change nothing but cost the network (and
        fail offline after a `fetch --mirror`). The manifest is brought up to date
        with the file's real sha256, so the stage cache notices a file replaced by
        hand; a changed file is used with a warning, but an empty file or an HTML
        page is an error that `fetch --force` repairs.
        """
        rel = dataset.mirror_path
        dest = self.raw_dir / rel
        if not dest.is_file():
            return False
        problem = bad_content(dest)
        if problem:
            raise PlannerError(
                f"the raw file {problem}",
                file=dest,
                fix="run `planner fetch --force` to replace it (or `planner fetch --mirror "
                "<dir> --force` without internet)",
            )
        have = sha256_file(dest)
        rec = self.manifest["files"].get(rel)
        if rec and rec.get("sha256") == have:
            log.debug("%s already present", rel)
            return True
        if rec:
            log.warning(
                "%s changed since it was fetched (sha256 %s, was %s); using it as it is "
                "(run `planner fetch --force` to get the published file)",
                rel,
                have[:12],
                str(rec.get("sha256"))[:12],
            )
            source = f"changed in place (fetched from {rec.get('source')})"
        else:
            log.info("%s found in the raw folder; using it", rel)
            source = "found in the raw folder"
        self.manifest["files"][rel] = _record(dest, have, source, dataset, None)
        return True

    def fetch_dataset(self, dataset: Dataset, force: bool = False) -> None:
        if not dataset.online and not dataset.required:
            log.info("dataset %s has no online source and is optional; skipped", dataset.name)
            return
        if not dataset.online:
            raise PlannerError(
                f"dataset '{dataset.name}' has no online source",
                file=self.raw_dir / dataset.mirror_path,
                fix="copy it from the offline mirror: `planner fetch --mirror <dir>`",
            )
        changed = False
        failed: _PartFailed | None = None
        for part in dataset.online:
            try:
                changed |= self.fetch_part(dataset, part, force)
            except PlannerError as exc:
                if part.name != "lookup_icb_nhser":
                    raise _PartFailed(part, exc) from None
                failed = _PartFailed(part, exc)
                log.warning("%s; the ICB → NHS region lookup will be derived instead", exc)
        if dataset.assembled_online:
            self.assemble(dataset, changed, failed)
        else:
            self.drop_shadowing(dataset)

    def drop_shadowing(self, dataset: Dataset) -> None:
        """After a forced download, a mirror-layout file would hide it from readers: remove it."""
        rel = dataset.mirror_path
        stale = self.raw_dir / rel
        if stale.exists() and dataset.download_path and rel != dataset.download_path:
            log.info("%s replaced by the download %s", rel, dataset.download_path)
            stale.unlink()
            self.manifest["files"].pop(rel, None)

    def fetch_part(self, dataset: Dataset, part: OnlinePart, force: bool = False) -> bool:
        """Download one part unless its file already matches; True when it was (re)written."""
        rel = part.download_path
        dest = self.raw_dir / rel
        rec = self.manifest["files"].get(rel) or {}
        source = part.source(self.base_url)
        if not force and _up_to_date(dest, rec.get("sha256")):
            log.debug("%s already up to date", rel)
            return False
        fix_moved = (
            f"the {'service' if part.kind != 'file' else 'file'} may have been renamed or "
            f"moved: find the current one on the publisher's page and edit "
            f"{dataset.entry(part)}, or use --mirror"
        )
        if part.kind == "file":
            sha = self.download_file(dataset, part, dest, fix_moved)
        else:
            sha = self.download_arcgis(dataset, part, dest, fix_moved)
        self.manifest["files"][rel] = _record(dest, sha, source, dataset, part.name)
        log.info("downloaded %s", rel)
        return True

    # ---- plain files

    def download_file(self, dataset: Dataset, part: OnlinePart, dest: Path, fix_moved: str) -> str:
        url = str(part.url)
        what = f"download of '{part.name}'"
        with atomic_file(dest, "wb") as out:
            sha, size, head = self.client.download_file(url, what, out, part.format, fix_moved)
            if part.format == "csv" and part.columns:
                header = web.csv_header(head)
                if header is not None:
                    sources.check_columns(
                        header,
                        part,
                        url,
                        fix="the publisher changed the layout: edit " + dataset.entry(part),
                    )
        revised = []
        if part.expected_size is not None and size != part.expected_size:
            revised.append(f"size {size:,} bytes, recorded {part.expected_size:,}")
        if part.expected_sha256 and sha != part.expected_sha256:
            revised.append(f"sha256 {sha[:12]}…, recorded {part.expected_sha256[:12]}…")
        if revised:
            log.warning(
                "%s: the published file differs from the one recorded (%s); the publisher has "
                "probably revised it, so it is used as it is. Check it, then update "
                "expected_sha256/expected_size in %s",
                url,
                "; ".join(revised),
                dataset.entry(part),
            )
        return sha

    # ---- ArcGIS

    def download_arcgis(
        self, dataset: Dataset, part: OnlinePart, dest: Path, fix_moved: str
    ) -> str:
        features, columns, geojson = web.arcgis_features(
            self.client, part, self.base_url, self.page_size, fix_moved
        )
        query = part.query_url(self.base_url)
        spelled = sources.check_columns(
            columns,
            part,
            query,
            fix="the publisher changed the layout: edit " + dataset.entry(part),
        )
        if part.code_column:
            code = next(a for a, r in spelled.items() if r == part.code_column)
            codes = [str(web.attributes(f, geojson).get(code) or "") for f in features]
            dropped = sources.other_countries(codes)
            if dropped:
                log.info(
                    "ArcGIS service %s: %s",
                    part.service,
                    sources.describe_dropped(len(features), dropped),
                )
                features = [
                    f
                    for f, c in zip(features, codes, strict=True)
                    if not sources.OTHER_COUNTRY_CODE.match(c.strip())
                ]
        payload = web.features_bytes(features, columns, geojson, spelled)
        return web.write_atomic_bytes(dest, payload)

    # ---- the lookup

    def assemble(self, dataset: Dataset, changed: bool, failed: _PartFailed | None) -> None:
        rel = dataset.mirror_path
        dest = self.raw_dir / rel
        rec = self.manifest["files"].get(rel) or {}
        if not changed and failed is None and _up_to_date(dest, rec.get("sha256")):
            return
        frames = lookup.read_parts(self.raw_dir, dataset)
        parts = [p.download_path for p in dataset.online if p.name in frames]
        regions = frames.get("lookup_icb_nhser")
        uncovered = (
            []
            if regions is None
            else lookup.uncovered_icbs(regions[1], frames["lookup_lsoa_icb"][1])
        )
        if failed is not None or uncovered:
            if uncovered:
                log.warning(
                    "the ICB → NHS region lookup misses %d ICB(s), e.g. %s; deriving it instead",
                    len(uncovered),
                    uncovered[0],
                )
            derived, used = self.derive_regions(dataset, frames["lookup_lsoa_icb"][1], failed)
            frames["lookup_icb_nhser"] = derived
            parts = [p for p in parts if p != dataset.part("lookup_icb_nhser").download_path]
            parts.append(used)
        table = lookup.assemble_lookup(frames)
        with atomic_file(dest, "w") as handle:
            table.to_csv(handle, index=False, lineterminator="\n")
        source = "assembled from " + ", ".join(parts)
        self.manifest["files"][rel] = _record(dest, sha256_file(dest), source, dataset, None)

    def derive_regions(
        self, dataset: Dataset, lsoa_icb: pd.DataFrame, failed: _PartFailed | None
    ) -> tuple[tuple[Path, pd.DataFrame], str]:
        """ICB → NHS region from the NHS region boundaries (downloaded now if needed)."""
        name = "nhser_boundaries"
        registry = dict(DATASETS) | dict(self.registry)
        try:
            if not self.keep_present(registry[name]):
                self.fetch_dataset(registry[name])
            regions = inputs.read_table(name, self.raw_dir, registry)
            boundaries = inputs.read_table("lsoa_boundaries", self.raw_dir, registry)
            table = lookup.derive_icb_regions(lsoa_icb, boundaries.frame, regions.frame)
        except (PlannerError, _PartFailed) as exc:
            error = exc.error if isinstance(exc, _PartFailed) else exc
            part = dataset.part("lookup_icb_nhser")
            cause = f" after {failed.error.detail}" if failed is not None else ""
            raise _PartFailed(
                part,
                PlannerError(
                    f"ICB → NHS region: the lookup service failed{cause}, and deriving it from "
                    f"the NHS region boundaries failed too: {error}",
                    fix="edit " + dataset.entry(part) + ", or use --mirror",
                ),
            ) from None
        return (
            regions.file,
            table,
        ), f"{regions.file.relative_to(self.raw_dir).as_posix()} (spatial)"


class _PartFailed(Exception):
    """An online part failed: carries the part so the report can name its entry."""

    def __init__(self, part: OnlinePart, error: PlannerError) -> None:
        super().__init__(str(error))
        self.part = part
        self.error = error
