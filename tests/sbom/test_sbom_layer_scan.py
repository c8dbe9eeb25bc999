"""SBOM facts read back from real layers: the static image's apk layer (real Alpine 3.19 packages,
built by the core), a files layer, and os-release behind a symlink."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import pytest
from ocibuild.sbom.facts import APK, FILES
from ocibuild.sbom.layer_scan import LayerSource, apk_packages, image_layers, parse_os_release, scan_layer
from testutil.sbom_images import build_app, build_static, image_facts, static_lock
from testutil.tars import tar_of


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    work = tmp_path_factory.mktemp("images")
    build_static(work)
    build_app(work, work / "static" / "layout")
    return work


def test_static_layer_lists_every_locked_package_with_the_lock_facts(images: Path) -> None:
    facts = image_facts("images/static", "latest", images / "static" / "layout")
    (layer,) = facts.layers
    assert layer.kind == APK
    locked = {p.name: p for p in static_lock().packages}
    assert [p.name for p in layer.packages] == sorted(locked)
    for pkg in layer.packages:
        lock = locked[pkg.name]
        assert (pkg.version, pkg.architecture, pkg.control_checksum, pkg.size) == (
            lock.version,
            lock.architecture,
            lock.checksum,
            lock.size,
        )
        assert (pkg.apk_sha256, pkg.download_location) == (lock.sha256, lock.url)
        assert pkg.maintainer == "Natanael Copa <ncopa@alpinelinux.org>"
    by_name = {p.name: p for p in layer.packages}
    assert by_name["alpine-release"].depends == ("alpine-keys",)
    assert by_name["alpine-release"].origin == "alpine-base"
    assert by_name["tzdata"].license == "Public-Domain"
    assert by_name["ca-certificates-bundle"].license == "MPL-2.0 AND MIT"
    assert facts.os_release is not None
    assert (facts.os_release.id, facts.os_release.version_id, facts.os_release.pretty_name) == (
        "alpine",
        "3.19.1",
        "Alpine Linux v3.19",
    )


def test_app_layer_is_a_files_layer_with_its_files_digests(images: Path) -> None:
    facts = image_facts(
        "images/app", "v1", images / "app" / "layout", ("images/static:latest", images / "static" / "layout")
    )
    base_layer, app_layer = facts.layers
    assert (base_layer.kind, base_layer.from_base, app_layer.kind, app_layer.from_base) == (
        APK,
        True,
        FILES,
        False,
    )
    assert app_layer.created_by == "oci_layer //app:files"
    content = b"#!/bin/sh\necho app\n"
    files = {f.path: f for f in app_layer.files}
    assert sorted(files) == ["app/config.json", "app/run.sh"]
    assert files["app/run.sh"].sha256 == hashlib.sha256(content).hexdigest()
    assert files["app/run.sh"].sha1 == hashlib.sha1(content).hexdigest()
    assert facts.base is not None and facts.base.reference == "images/static:latest"


def _tar(path: Path, members) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, link, data in members:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


OS_RELEASE = b'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\n'


@pytest.mark.parametrize("link", ["../usr/lib/os-release", "/usr/lib/os-release"])
def test_os_release_behind_a_symlink(tmp_path: Path, link: str) -> None:
    blob = _tar(
        tmp_path / "l.tar.gz", [("usr/lib/os-release", None, OS_RELEASE), ("./etc/os-release", link, b"")]
    )
    scan = scan_layer(blob)
    assert scan.os_release == OS_RELEASE and scan.installed_db is None
    (layer,), osr = image_layers([LayerSource(blob, "sha256:" + "0" * 64, "sha256:" + "1" * 64)])
    assert layer.kind == FILES and osr is not None and osr.version_id == "3.19.1"


def test_os_release_without_version_is_none() -> None:
    assert parse_os_release(b"ID=alpine\n# VERSION_ID=3\n", "x") is None


def test_packages_absent_from_the_lock_have_no_apk_digest(tmp_path: Path) -> None:
    db = (
        b"C:Q1aaaaaaaaaaaaaaaaaaaaaaaaaaa=\nP:app\nV:1.0-r0\nA:x86_64\nS:10\nI:20\nT:t\nU:https://example.com\n"
        b"L:MIT\nD:so:libfoo.so.1 !conflict base\n\n"
        b"C:Q1bbbbbbbbbbbbbbbbbbbbbbbbbbb=\nP:libfoo\nV:2-r0\nA:x86_64\nS:10\nI:20\nT:t\nU:u\nL:MIT\np:so:libfoo.so.1=1\n\n"
    )
    (app, libfoo) = apk_packages(db, static_lock().packages, "test", {"base": "base"})
    assert (app.name, app.apk_sha256, app.download_location) == ("app", None, None)
    assert app.depends == ("base", "libfoo")  # by name (another layer's) and by what libfoo provides
    assert libfoo.depends == ()


@pytest.mark.parametrize("members", [0, 1, 3])
def test_layers_of_several_gzip_members_are_read_whole(tmp_path: Path, members: int) -> None:
    # The layer writer emits one gzip member per 1 MiB of tar; every member must be read.
    files = {f"etc/file{i}": (b"%d" % i) * 4000 for i in range(6)}
    raw = tar_of(files, tarfile.PAX_FORMAT)
    if members:
        cut = [len(raw) * i // members for i in range(members + 1)]
        blob = b"".join(gzip.compress(raw[a:b], mtime=0) for a, b in zip(cut, cut[1:]))
    else:
        blob = raw
    (tmp_path / "layer").write_bytes(blob)
    scan = scan_layer(tmp_path / "layer")
    assert {f.path: f.sha256 for f in scan.files if f.path in files} == {
        name: hashlib.sha256(data).hexdigest() for name, data in files.items()
    }
