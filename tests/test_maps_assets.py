"""planner.maps.assets: pinned npm packages fetched over real HTTP, checked, cached, installed.

The registry is a real HTTP server on 127.0.0.1 (tests/arcgis_server.py) serving
npm-shaped tarballs built here; the declared real packages are checked against
the npm copies the browser tests use (.cache/browser-assets).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
from dataclasses import replace

import pytest
import requests
from arcgis_server import FakeServer
from browser_assets import asset_dir, missing_assets

from planner import maps
from planner.errors import PlannerError
from planner.maps import assets

FILES = {
    "LICENSE": b"MIT licence text\n",
    "dist/demo.js": b"window.demo = 1;\n",
    "dist/demo.css": b".demo { background: url(images/x.png); }\n",
    "dist/images/x.png": b"\x89PNG not really",
}
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens, so any request fails


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tarball(files: dict[str, bytes], top: str = "package") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, data in {**files, "package.json": b"{}", "README.md": b"unused"}.items():
            info = tarfile.TarInfo(f"{top}/{path}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def _package(tarball: bytes, files: dict[str, bytes] = FILES) -> assets.NpmPackage:
    return assets.NpmPackage(name="demo-pkg", version="1.2.3", integrity=_integrity(tarball),
                             licence="LICENSE",
                             files=tuple((p, _sha256(d)) for p, d in files.items()))  # fmt: skip


@pytest.fixture
def registry():
    tarball = _tarball(FILES)
    with FakeServer(files={"demo-pkg/-/demo-pkg-1.2.3.tgz": tarball}) as server:
        yield server, _package(tarball), server.origin + "/files"


def test_downloads_checks_unpacks_then_reuses_the_cache(registry, tmp_path):
    server, package, url = registry
    cache = assets.ensure_assets(tmp_path / "web-assets", session=requests.Session(),
                                 registry=url, packages=[package])  # fmt: skip
    for path, data in FILES.items():
        assert (cache / "demo-pkg-1.2.3" / path).read_bytes() == data
    assert not (cache / "demo-pkg-1.2.3" / "README.md").exists()  # only the declared files
    assert server.hits["/files/demo-pkg/-/demo-pkg-1.2.3.tgz"] == 1
    assets.ensure_assets(cache, registry=url, packages=[package])
    assert server.total_hits() == 1
    assert not [p for p in cache.rglob("*") if p.name.startswith(".")], "temporary files left"


def test_a_tarball_that_fails_its_integrity_is_refused(registry, tmp_path):
    server, package, url = registry
    server.files["demo-pkg/-/demo-pkg-1.2.3.tgz"] = _tarball({**FILES, "dist/demo.js": b"evil()"})
    with pytest.raises(PlannerError, match=r"demo-pkg@1\.2\.3 tarball fails its integrity check"):
        assets.ensure_assets(tmp_path, registry=url, packages=[package])
    assert not list(tmp_path.rglob("*.js"))


def test_a_declared_file_the_tarball_lacks_is_an_error(tmp_path):
    tarball = _tarball({k: v for k, v in FILES.items() if k != "dist/demo.js"})
    package = replace(_package(_tarball(FILES)), integrity=_integrity(tarball))
    with (
        FakeServer(files={"demo-pkg/-/demo-pkg-1.2.3.tgz": tarball}) as server,
        pytest.raises(PlannerError, match=r"lacks the expected dist/demo\.js"),
    ):
        assets.ensure_assets(tmp_path, registry=server.origin + "/files", packages=[package])


def test_a_corrupted_cached_file_is_fetched_again(registry, tmp_path, caplog):
    server, package, url = registry
    cache = assets.ensure_assets(tmp_path, registry=url, packages=[package])
    js = cache / "demo-pkg-1.2.3" / "dist" / "demo.js"
    js.write_bytes(b"truncated")
    assets.ensure_assets(cache, registry=url, packages=[package])
    assert js.read_bytes() == FILES["dist/demo.js"]
    assert server.total_hits() == 2
    assert "does not match its sha256" in caplog.text


def test_a_failed_download_is_one_planner_error(registry, tmp_path):
    server, package, url = registry
    server.files.clear()
    with pytest.raises(PlannerError, match=r"could not download demo-pkg@1\.2\.3.*Fix: "):
        assets.ensure_assets(tmp_path, registry=url, packages=[package],
                             session=requests.Session())  # fmt: skip


@pytest.mark.parametrize("layout", ["node_modules/demo-pkg", "demo-pkg", "demo-pkg-1.2.3"])
def test_local_folders_are_used_without_the_network(tmp_path, layout):
    package = _package(_tarball(FILES))
    source = tmp_path / "source"
    for path, data in FILES.items():
        (source / layout / path).parent.mkdir(parents=True, exist_ok=True)
        (source / layout / path).write_bytes(data)
    cache = assets.ensure_assets(tmp_path / "cache", sources=[tmp_path / "empty", source],
                                 registry=UNREACHABLE, packages=[package])  # fmt: skip
    assert (cache / "demo-pkg-1.2.3" / "dist" / "demo.js").read_bytes() == FILES["dist/demo.js"]


def test_a_local_file_of_another_version_is_not_taken(tmp_path):
    package = _package(_tarball(FILES))
    source = tmp_path / "node_modules" / "demo-pkg"
    for path, data in FILES.items():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        (source / path).write_bytes(data + b"/* 1.2.4 */")
    with pytest.raises(PlannerError, match="could not download"):
        assets.ensure_assets(tmp_path / "cache", sources=[tmp_path], registry=UNREACHABLE,
                             packages=[package], session=requests.Session())  # fmt: skip


def test_a_tarball_in_a_mirror_folder_is_checked_and_used(tmp_path):
    tarball = _tarball(FILES, top="demo")  # npm allows any top folder name
    package = _package(tarball)
    mirror = tmp_path / "mirror" / "web-assets"
    mirror.mkdir(parents=True)
    (mirror / "demo-pkg-1.2.3.tgz").write_bytes(tarball)
    cache = assets.ensure_assets(tmp_path / "cache", sources=[mirror], registry=UNREACHABLE,
                                 packages=[package])  # fmt: skip
    assert (cache / "demo-pkg-1.2.3" / "LICENSE").read_bytes() == FILES["LICENSE"]


def test_install_copies_files_and_licences_and_refuses_a_changed_one(registry, tmp_path):
    _, package, url = registry
    cache = assets.ensure_assets(tmp_path / "cache", registry=url, packages=[package])
    written = assets.install(tmp_path / "maps", cache, packages=[package])
    assert "assets/demo-pkg-1.2.3/LICENSE" in written
    for path, data in FILES.items():
        assert (tmp_path / "maps" / "assets" / "demo-pkg-1.2.3" / path).read_bytes() == data
    (cache / "demo-pkg-1.2.3" / "dist" / "demo.css").write_bytes(b"changed")
    with pytest.raises(PlannerError, match=r"demo\.css.*missing or changed.*planner fetch"):
        assets.install(tmp_path / "maps2", cache, packages=[package])


def test_every_cdn_file_of_the_pages_has_a_local_copy():
    for url in maps.CDN_ASSETS:
        rel = assets.local_url(url, "../")
        assert rel.startswith("../assets/") and "@" not in rel
    assert (
        assets.local_url(
            "https://cdn.jsdelivr.net/npm/leaflet.fullscreen@3.0.0/Control.FullScreen.min.js", ""
        )
        == "assets/leaflet.fullscreen-3.0.0/Control.FullScreen.js"
    )
    for url in ("https://cdn.jsdelivr.net/npm/leaflet@1.9.4/dist/leaflet.js",
                "https://code.jquery.com/jquery-3.7.1.min.js"):  # fmt: skip
        with pytest.raises(PlannerError, match="no pinned package provides"):
            assets.local_url(url, "")


def test_each_package_declares_its_licence_and_registry_integrity():
    for package in assets.PACKAGES:
        assert package.licence in dict(package.files)
        assert package.integrity.startswith("sha512-") and len(package.integrity) == 95
        assert package.tarball_url().startswith("https://registry.npmjs.org/")


def test_the_declared_files_match_the_real_npm_packages(tmp_path):
    """The pinned sha256s are those of the published packages (the copies in .cache)."""
    source = asset_dir()
    if missing_assets(source):
        if os.environ.get("CI"):
            pytest.fail(
                f"browser assets missing under {source}; run scripts/fetch_browser_assets.sh"
            )
        pytest.skip(f"browser assets missing under {source}")
    cache = assets.ensure_assets(tmp_path, sources=[source / "web-assets", source],
                                 registry=UNREACHABLE)  # fmt: skip
    assert sorted(
        p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file()
    ) == sorted(f"{pkg.folder}/{path}" for pkg in assets.PACKAGES for path, _ in pkg.files)


def test_default_sources_are_the_mirror_folder_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(assets.SOURCES_ENV, raising=False)
    assert assets.default_sources() == []
    assert assets.default_sources(tmp_path) == [tmp_path / "web-assets"]
    monkeypatch.setenv(assets.SOURCES_ENV, str(tmp_path / "copies"))
    assert assets.default_sources(tmp_path) == [tmp_path / "web-assets", tmp_path / "copies"]
