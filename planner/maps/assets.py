"""Leaflet and its plugins for the map pages: pinned npm packages, fetched at run time.

Code from elsewhere is not committed to the repository, and pages must work
from a file with no network.  So each package the pages use is declared here
(name, exact version, the npm registry's sha512 `integrity` of its tarball, and
the sha256 of every file the pages load plus its licence file).
`ensure_assets` brings those files into a cache folder (data/raw/web-assets/):
from a local folder if one holds them (an npm node_modules folder, a mirror's
web-assets/ folder, or a cached tarball), otherwise from the npm registry, with
the tarball's integrity checked before anything is unpacked.  `install` copies
them beside the pages (maps/assets/<name>-<version>/...), and `local_url`
gives a CDN URL's copy there (planner.maps.context.localise points a folium
figure at those copies; this module needs no folium, so `planner plan` does
not load it).

The versions are folium's pins (planner.maps.CDN_ASSETS); `local_url` refuses
a CDN URL no package declares, so a new folium pin fails loudly.  To add or
bump a package: `npm view NAME@VERSION dist.integrity` gives `integrity`, and
`sha256sum` of the unpacked files gives the rest.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import re
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

from planner.errors import PlannerError
from planner.fsutil import atomic_file

log = logging.getLogger(__name__)

NPM_REGISTRY = "https://registry.npmjs.org"
#: A folder of already-fetched web files (any layout `local_candidates` knows,
#: or the tarballs), tried before the registry: for machines with no internet.
SOURCES_ENV = "PLANNER_WEB_ASSETS"
MIRROR_FOLDER = "web-assets"
ASSETS_FOLDER = "assets"
FETCH_FIX = "check the network (or proxy), or copy a web-assets/ folder into the mirror"
_JSDELIVR = re.compile(
    r"^https://cdn\.jsdelivr\.net/npm/(?P<name>[^/@]+)@(?P<version>[^/]+)/(?P<path>[^?#]+)$"
)


@dataclass(frozen=True)
class NpmPackage:
    """One pinned npm package and the files of it that the pages use."""

    name: str
    version: str
    integrity: str  # sha512-<base64> of the tarball, as `npm view NAME@VERSION dist.integrity`
    licence: str  # path of the licence file inside the package (also in `files`)
    files: tuple[tuple[str, str], ...]  # (path inside the package, sha256 of its bytes)

    @property
    def folder(self) -> str:
        """Folder of the unpacked files in the cache and under maps/assets/."""
        return f"{self.name}-{self.version}"

    @property
    def tarball_name(self) -> str:
        return f"{self.name}-{self.version}.tgz"

    def tarball_url(self, registry: str = NPM_REGISTRY) -> str:
        return f"{registry.rstrip('/')}/{self.name}/-/{self.tarball_name}"


PACKAGES: tuple[NpmPackage, ...] = (
    NpmPackage(
        name="leaflet",
        version="1.9.3",
        integrity="sha512-iB2cR9vAkDOu5l3HAay2obcUHZ7xwUBBjph8+PGtmW/2lYhbLizWtG7nTeYht36WfOslixQF9D/uSIzhZgGMfQ==",
        licence="LICENSE",
        files=(
            ("LICENSE", "97c194191510b19c72d25094922821a888d5d9bafb909ea7a38c9bf5b6c40a08"),
            ("dist/leaflet.js", "5819285cec137b229c94e1ee5ad73e8b6b84345a4367d60f75fe477fe0fb7b03"),
            ("dist/leaflet.css", "90b693d86392a4779c861b28cf307e7e59c3fb35328c4d8b95f58f814d38c722"),
            ("dist/images/layers-2x.png",
             "066daca850d8ffbef007af00b06eac0015728dee279c51f3cb6c716df7c42edf"),
            ("dist/images/layers.png",
             "1dbbe9d028e292f36fcba8f8b3a28d5e8932754fc2215b9ac69e4cdecf5107c6"),
            ("dist/images/marker-icon-2x.png",
             "00179c4c1ee830d3a108412ae0d294f55776cfeb085c60129a39aa6fc4ae2528"),
            ("dist/images/marker-icon.png",
             "574c3a5cca85f4114085b6841596d62f00d7c892c7b03f28cbfa301deb1dc437"),
            ("dist/images/marker-shadow.png",
             "264f5c640339f042dd729062cfc04c17f8ea0f29882b538e3848ed8f10edb4da"),
        ),
    ),
    NpmPackage(
        name="leaflet-search",
        version="2.9.7",
        integrity="sha512-v7CxEbXyQXqLFjSkTpvM5i1cvmrcPOos57UmTnR94qqvVZykXyz/0SKEs3cbkFHjyrmMQ3Yk2Q5W6PvyuiSuPg==",
        licence="license.txt",
        files=(
            ("license.txt", "3738e062d2cae989e8edcca34700b602d2645a0790515c6ebf1dbd4bbbd4d1c9"),
            ("dist/leaflet-search.min.js",
             "ef8b5f2484600c4a35c298c57163218f87bfbe7ff032fb602b02270098e2c096"),
            ("dist/leaflet-search.min.css",
             "a66c4b9a541a541d7e2012e46b78b1fe09f664d311ca2459e04897feabef53ee"),
            ("images/loader.gif", "ebeab4d490fb22b2f82d28d2032777e8de98cc4d93338bb3475c5c9636eb8adf"),
            ("images/search-icon.png",
             "52aceec684de337b93590340fb09bc4d2b760d85e32bd2511c5f242c0c5f0df0"),
        ),
    ),
    NpmPackage(
        name="leaflet.fullscreen",
        version="3.0.0",
        integrity="sha512-81wWSUXz1ZtdneR0v5eJDWXUSx+Zo5J50WXWeydG/UcILfIEAgz/iOjZSi3p00Z9MJ/FC/P5i3CgdYuEAos0yQ==",
        licence="LICENSE",
        files=(
            ("LICENSE", "cbbb5f2702cb5ed4e9a850b733bedaaf555cb3075e77d5c29cb4fac8b87504a1"),
            # jsDelivr serves Control.FullScreen.min.js by minifying this on the fly.
            ("Control.FullScreen.js",
             "3c542b5d5844cc00cff2787dff49504a31f3bed9de3161e5b26e0c0437d6bbb7"),
            ("Control.FullScreen.css",
             "31f9593e6e715114e23076ba11628f68a301025b44b85ffb70fca4bc9475214e"),
            ("icon-fullscreen.svg",
             "034807095346f7be3b9d5b2add42ba0677af1a89d2f90a0caa5c75ec2780a2a2"),
        ),
    ),
)  # fmt: skip


# --------------------------------------------------------------------------- the cache


def default_sources(mirror: str | Path | None = None) -> list[Path]:
    """Folders tried before the registry: the mirror's web-assets/, then $PLANNER_WEB_ASSETS."""
    sources = [Path(mirror) / MIRROR_FOLDER] if mirror is not None else []
    if os.environ.get(SOURCES_ENV):
        sources.append(Path(os.environ[SOURCES_ENV]))
    return sources


def ensure_assets(
    cache_dir: str | Path,
    *,
    sources: Sequence[str | Path] = (),
    session: requests.Session | None = None,
    registry: str = NPM_REGISTRY,
    packages: Sequence[NpmPackage] = PACKAGES,
) -> Path:
    """Make `cache_dir` hold every declared file, each checked by sha256; return it.

    Files already in the cache with the right sha256 are kept; a file that
    differs (corrupted, truncated, another version) is logged and fetched
    again.  Missing files come from the first of `sources` that holds them
    (unpacked in any of the layouts `local_candidates` lists, or as
    `<name>-<version>.tgz`), else from `registry` (one GET per package).
    """
    cache = Path(cache_dir)
    for package in packages:
        missing = [path for path, sha in package.files if not _cached(cache, package, path, sha)]
        if not missing:
            continue
        missing = _from_sources(cache, package, missing, [Path(s) for s in sources])
        if missing:
            _from_registry(cache, package, missing, session, registry)
    return cache


def _cached(cache: Path, package: NpmPackage, path: str, sha: str) -> bool:
    target = cache / package.folder / path
    if not target.is_file():
        return False
    if _sha256(target.read_bytes()) == sha:
        return True
    log.warning("web assets: %s does not match its sha256; fetching it again", target)
    return False


def _from_sources(cache: Path, package: NpmPackage, missing: list[str],
                  sources: list[Path]) -> list[str]:  # fmt: skip
    """Copy what the local folders hold; return the paths still missing."""
    wanted = dict(package.files)
    for source in sources:
        for path in list(missing):
            for candidate in local_candidates(source, package, path):
                if candidate.is_file() and _sha256(data := candidate.read_bytes()) == wanted[path]:
                    _write(cache / package.folder / path, data)
                    missing.remove(path)
                    break
        tarball = source / package.tarball_name
        if missing and tarball.is_file():
            try:
                _unpack(cache, package, missing, tarball.read_bytes(), str(tarball))
            except PlannerError as exc:
                log.warning("web assets: %s", exc)
            else:
                missing = []
        if not missing:
            log.info("web assets: %s@%s from %s", package.name, package.version, source)
            break
    return missing


def local_candidates(source: Path, package: NpmPackage, path: str) -> Iterator[Path]:
    """Where a local folder may hold a package file: our layout, npm's node_modules, or bare."""
    yield source / package.folder / path
    yield source / "node_modules" / package.name / path
    yield source / package.name / path


def _from_registry(cache: Path, package: NpmPackage, missing: list[str],
                   session: requests.Session | None, registry: str) -> None:  # fmt: skip
    url = package.tarball_url(registry)
    if session is None:
        from planner.web import make_session

        session = make_session()
    log.info("web assets: downloading %s", url)
    try:
        response = session.get(url, timeout=(10, 120))
        response.raise_for_status()
    except requests.RequestException as exc:
        raise PlannerError(f"could not download {package.name}@{package.version} for the maps "
                           f"({exc.__class__.__name__}: {exc})", file=url, fix=FETCH_FIX) from exc  # fmt: skip
    _unpack(cache, package, missing, response.content, url)


def _unpack(cache: Path, package: NpmPackage, missing: list[str], tarball: bytes,
            origin: str) -> None:  # fmt: skip
    """Check the tarball's integrity, then write the missing files, each checked by sha256."""
    algorithm, _, expected = package.integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, tarball).digest()).decode("ascii")
    if actual != expected:
        raise PlannerError(
            f"{package.name}@{package.version} tarball fails its integrity check",
            file=origin,
            field="integrity",
            value=f"{algorithm}-{actual}",
            fix=f"expected {package.integrity} (npm view {package.name}@{package.version} "
            "dist.integrity); check the registry or proxy, or remove the bad copy",
        )
    wanted = dict(package.files)
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for member in archive.getmembers():
            # npm tarballs hold one top folder (usually package/); paths are below it.
            inner = member.name.partition("/")[2]
            if member.isfile() and inner in missing:
                found[inner] = archive.extractfile(member).read()  # type: ignore[union-attr]
    for path in missing:
        data = found.get(path)
        if data is None or _sha256(data) != wanted[path]:
            raise PlannerError(
                f"{package.name}@{package.version} tarball lacks the expected {path}",
                file=origin, field=path, fix="check planner.maps.assets.PACKAGES against the package",
            )  # fmt: skip
        _write(cache / package.folder / path, data)


def _write(target: Path, data: bytes) -> None:
    with atomic_file(target, "wb") as handle:
        handle.write(data)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- beside the pages


def install(maps_dir: str | Path, assets_dir: str | Path, *,
            packages: Sequence[NpmPackage] = PACKAGES) -> list[str]:  # fmt: skip
    """Copy every declared file (licences included) from `assets_dir` into maps_dir/assets/.

    Each file is checked by sha256 on the way, so a page never loads a file
    other than the pinned one.  Returns the written paths relative to `maps_dir`.
    """
    source, out = Path(assets_dir), Path(maps_dir)
    written = []
    for package in packages:
        for path, sha in package.files:
            src = source / package.folder / path
            data = src.read_bytes() if src.is_file() else None
            if data is None or _sha256(data) != sha:
                raise PlannerError(
                    "a web asset for the maps is missing or changed", file=src,
                    fix="run `planner fetch` again (it fetches and checks the web assets)",
                )  # fmt: skip
            rel = f"{ASSETS_FOLDER}/{package.folder}/{path}"
            _write(out / rel, data)
            written.append(rel)
    return written


def local_url(cdn_url: str, root: str, *, packages: Sequence[NpmPackage] = PACKAGES) -> str:
    """The relative URL of the local copy of a jsDelivr npm URL, from a page `root` away.

    `root` is the way from the page to the maps folder: "" for index.html,
    "../" for region/ and icb/ pages.  jsDelivr minifies on the fly, so a
    `X.min.js` the package lacks maps to its `X.js`.
    """
    match = _JSDELIVR.match(cdn_url)
    for package in packages:
        if match and (match["name"], match["version"]) == (package.name, package.version):
            paths = {path for path, _ in package.files}
            path = match["path"]
            unminified = re.sub(r"\.min\.(js|css)$", r".\1", path)
            for candidate in (path, unminified):
                if candidate in paths:
                    return f"{root}{ASSETS_FOLDER}/{package.folder}/{candidate}"
    raise PlannerError(
        "a map page refers to a web file that no pinned package provides",
        value=cdn_url,
        fix="declare its npm package and files in planner.maps.assets.PACKAGES",
    )
