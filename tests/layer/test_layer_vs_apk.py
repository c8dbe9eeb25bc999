"""Differential test of whole installs: the tree our APK layer holds against the tree Alpine's real
apk-tools 2.14.0 writes with `apk add --root DIR --initdb --no-scripts` from the same packages.

Both sides: paths, types, modes, numeric owners, symlink targets, hard link groups, file contents,
and lib/apk/db/installed byte for byte. The only differences allowed are the ones in `DELIBERATE`
(the same table, with the same reasons, is in docs/apk-layer.md); anything else fails.
"""

from __future__ import annotations

import difflib
import gzip
import io
import re
import tarfile
from dataclasses import dataclass
from typing import Dict, List, Tuple

import pytest
from ocibuild.layer.apk_layer import ApkLayerOptions, build_apk_layer
from testutil.apk_layers import STATIC_SET, alpine_lock, alpine_packages_dir, lock_fixtures
from testutil.apk_reference import Node, apk_add, apk_reference_unavailable, tree_of_dir, tree_of_layer
from testutil.apkbuild import build_apk, directory, reg_file
from testutil.paths import repo_root

ABSENT = "absent"  # apk writes the path, the layer has none (unless a package ships it)
MODE = "mode"  # both have it, the permission bits may differ
CONTENT = "content"  # both have it (a regular file), the content may differ

# The one list of what `apk add --initdb --no-scripts` writes that the layer deliberately does not
# (or writes differently): path -> (differences allowed, why). Mirrored in docs/apk-layer.md.
DELIBERATE: Dict[str, Tuple[Tuple[str, ...], str]] = {
    "dev": ((ABSENT,), "made by apk --initdb for its device nodes; the runtime mounts /dev"),
    "dev/console": ((ABSENT,), "device node made by apk --initdb; layers hold no device nodes"),
    "dev/null": ((ABSENT,), "device node made by apk --initdb; layers hold no device nodes"),
    "dev/random": ((ABSENT,), "device node made by apk --initdb; layers hold no device nodes"),
    "dev/urandom": ((ABSENT,), "device node made by apk --initdb; layers hold no device nodes"),
    "dev/zero": ((ABSENT,), "device node made by apk --initdb; layers hold no device nodes"),
    "proc": (
        (ABSENT, MODE),
        "apk makes it 0555 to mount procfs on it while installing, and never changes a folder it did not"
        " create; the layer has the package's mode (alpine-baselayout: 0755); the runtime mounts /proc",
    ),
    "lib/apk/db/lock": ((ABSENT,), "apk's lock file of the running install"),
    "lib/apk/db/scripts.tar": (
        (ABSENT,),
        "install scripts are never run nor recorded; apk treats a missing scripts.tar as empty",
    ),
    "lib/apk/db/triggers": (
        (CONTENT,),
        "the layer's is empty: it records no trigger scripts (none in scripts.tar) for a later apk to run;"
        " apk lists busybox's",
    ),
    "etc/apk/world": (
        (CONTENT,),
        "the layer lists every package of the layer (or the --package names); apk the names asked for",
    ),
    "var": ((ABSENT,), "made by apk --initdb for its cache"),
    "var/cache": ((ABSENT,), "made by apk --initdb for its cache"),
    "var/cache/apk": ((ABSENT,), "apk's package cache folder (--initdb makes it even with --no-cache)"),
    "var/cache/misc": ((ABSENT,), "made by apk --initdb"),
}


@dataclass(frozen=True)
class Spec:
    packages: Tuple[str, ...]
    skip_scripts_of: Tuple[str, ...] = ()
    allow_setuid: bool = False
    # what the spec is here for, checked on apk's tree so that the comparison is not vacuous
    covers: Tuple[str, ...] = ()


SPECS = {
    "static": Spec(STATIC_SET, covers=("hardlink", "symlink")),  # tzdata's zoneinfo hard links
    # busybox-suid ships the setuid /bin/bbsuid; alpine-base is a package without files
    "alpine-base": Spec(
        ("alpine-base",), ("alpine-baselayout", "busybox", "openrc"), True, ("setuid", "non-root", "symlink")
    ),
    "busybox-musl": Spec(("busybox", "musl-utils", "libc-utils"), ("busybox",), covers=("symlink",)),
    "openssh-server": Spec(("openssh-server",), covers=("symlink",)),  # libcrypto3, zlib: .so links
    # chrony's pre-install only adds the chrony account: its folders are owned by ids 190:188 either
    # way (apk falls back to the tar header's ids when the image has no such account); a setgid folder
    "chrony": Spec(("chrony",), ("busybox", "chrony"), covers=("non-root", "setgid-dir")),
}

_COVERS = {
    "hardlink": lambda n: bool(n.links),
    "symlink": lambda n: n.kind == "symlink",
    "setuid": lambda n: n.kind == "file" and bool(n.mode & 0o4000),
    "non-root": lambda n: (n.uid, n.gid) != (0, 0),
    "setgid-dir": lambda n: n.kind == "dir" and bool(n.mode & 0o2000),
}


@dataclass(frozen=True)
class Installs:
    spec: Spec
    locked: Tuple[str, ...]  # names of the lock's packages
    ours: Dict[str, Node]
    apk: Dict[str, Node]
    ours_files: Dict[str, bytes]  # a few files of each side, by path
    apk_files: Dict[str, bytes]


_READ = ("lib/apk/db/installed", "lib/apk/db/triggers", "etc/apk/world", "etc/apk/arch")


@pytest.fixture(scope="module", params=sorted(SPECS), ids=sorted(SPECS))
def installs(request, tmp_path_factory) -> Installs:
    reason = apk_reference_unavailable()
    if reason:
        pytest.skip(reason)
    spec = SPECS[request.param]
    tmp = tmp_path_factory.mktemp(f"vs-apk-{request.param}")
    lock = alpine_lock(spec.packages)
    layer = tmp / "layer.tar.gz"
    options = ApkLayerOptions(
        arch="x86_64", skip_scripts_of=spec.skip_scripts_of, allow_setuid=spec.allow_setuid
    )
    build_apk_layer(lock, str(alpine_packages_dir()), options, str(layer))
    root = tmp / "apk-root"  # a fresh --root per install
    apk_add(root, spec.packages)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer.read_bytes())), mode="r:") as tar:
        ours_files = {p: tar.extractfile(p).read() for p in _READ}  # type: ignore[union-attr]
    apk_files = {p: (root / p).read_bytes() for p in _READ}
    return Installs(
        spec,
        tuple(p.name for p in lock.packages_for("x86_64")),
        tree_of_layer(layer),
        tree_of_dir(root),
        ours_files,
        apk_files,
    )


def _allowed(path: str) -> Tuple[str, ...]:
    return DELIBERATE.get(path, ((), ""))[0]


def _differences(a: Node, b: Node) -> List[str]:
    fields = ["kind", "mode", "uid", "gid", "target", "sha256", "links", "rdev"]
    return [f for f in fields if getattr(a, f) != getattr(b, f)]


def test_same_paths(installs):
    only_apk = sorted(p for p in set(installs.apk) - set(installs.ours) if ABSENT not in _allowed(p))
    only_ours = sorted(set(installs.ours) - set(installs.apk))
    assert (only_apk, only_ours) == ([], []), "paths only apk writes / only the layer has"


def test_same_types_modes_owners_links_and_contents(installs):
    problems = []
    for path in sorted(set(installs.ours) & set(installs.apk)):
        ours, theirs = installs.ours[path], installs.apk[path]
        allowed = _allowed(path)
        diff = [
            f
            for f in _differences(ours, theirs)
            if not (f == "mode" and MODE in allowed) and not (f == "sha256" and CONTENT in allowed)
        ]
        if diff:
            problems.append(
                f"{path}: "
                + ", ".join(f"{f}: layer {getattr(ours, f)!r} apk {getattr(theirs, f)!r}" for f in diff)
            )
    assert not problems, f"{len(problems)} paths differ:\n" + "\n".join(problems[:40])
    missing = [f for f in installs.spec.covers if not any(map(_COVERS[f], installs.apk.values()))]
    assert not missing, f"apk's tree has no entry of these kinds, the spec no longer covers them: {missing}"


def test_installed_db_is_byte_identical(installs):
    ours, theirs = installs.ours_files["lib/apk/db/installed"], installs.apk_files["lib/apk/db/installed"]
    if ours != theirs:
        diff = difflib.unified_diff(
            theirs.decode(errors="replace").splitlines(),
            ours.decode(errors="replace").splitlines(),
            "apk",
            "layer",
            lineterm="",
        )
        pytest.fail("lib/apk/db/installed differs:\n" + "\n".join(list(diff)[:60]))


def test_arch_is_identical(installs):
    assert installs.ours_files["etc/apk/arch"] == installs.apk_files["etc/apk/arch"] == b"x86_64\n"


def test_world_and_triggers_differ_only_as_documented(installs):
    assert installs.ours_files["etc/apk/world"].decode().split() == sorted(installs.locked)
    assert installs.apk_files["etc/apk/world"].decode().split() == sorted(installs.spec.packages)
    assert installs.ours_files["lib/apk/db/triggers"] == b""
    for line in installs.apk_files["lib/apk/db/triggers"].decode().splitlines():
        assert re.fullmatch(r"Q1\S{27}=( \S+)+", line), line  # "<package checksum> <paths watched>"


def test_deliberate_differences_are_the_table_in_the_docs():
    text = (repo_root() / "docs" / "apk-layer.md").read_text()
    section = text.split("## Compared with apk", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]+) \| ([^|]+) \|$", section, re.M)
    table = {path: (tuple(k.strip() for k in kinds.split(",")), why.strip()) for path, kinds, why in rows}
    assert table == DELIBERATE


def _fixture_packages() -> List[bytes]:
    """Made-up packages for what Alpine's set shows only once: file-less packages that replace
    another (first and last in name order: apk 2.14 moves the first one's r: to the next block and
    loses the last one's), entries apk skips (`.dummy`, `.keep_*`), and directories two packages
    ship with different metadata (apk: the lowest owner wins, modes of that owner are and-ed)."""
    return [
        build_apk("aaa-meta", "1.0-r0", files=[reg_file(".dummy", b"")], replaces=["middle"]),
        build_apk(
            "middle",
            "1.0-r0",
            files=[
                directory("usr/share/middle"),
                reg_file("usr/share/middle/.keep_middle", b""),
                reg_file("usr/share/middle/.keep_", b"kept: the name is not longer than .keep_\n"),
                reg_file("usr/share/middle/data", b"data\n"),
                directory("var/lib/middle/.keep_dir"),  # folders named .keep_* are installed
                directory("opt/and-ed", mode=0o755),
                directory("opt/lower-owner", mode=0o750, uid=5, gid=5),
                directory("opt/lower-gid", mode=0o775, uid=7, gid=9),
            ],
        ),
        build_apk(
            "other",
            "1.0-r0",
            files=[
                directory("opt/and-ed", mode=0o2751),
                directory("opt/lower-owner", mode=0o700),
                directory("opt/lower-gid", mode=0o700, uid=7, gid=8),
            ],
        ),
        build_apk("zzz-meta", "1.0-r0", files=[reg_file(".dummy", b"")], replaces=["middle"]),
    ]


def test_fixture_packages_as_apk_installs_them(tmp_path):
    reason = apk_reference_unavailable()
    if reason:
        pytest.skip(reason)
    apks = _fixture_packages()
    lock, packages_dir = lock_fixtures(tmp_path, apks)
    layer = tmp_path / "layer.tar.gz"
    build_apk_layer(lock, str(packages_dir), ApkLayerOptions(arch="x86_64"), str(layer))
    root = tmp_path / "apk-root"
    names = [p.name for p in lock.packages_for("x86_64")]
    assert names == ["aaa-meta", "middle", "other", "zzz-meta"]
    apk_add(root, names, repository=tmp_path / "repo", keys_dir=tmp_path / "keys")
    ours, theirs = tree_of_layer(layer), tree_of_dir(root)
    only_apk = sorted(p for p in set(theirs) - set(ours) if ABSENT not in _allowed(p))
    assert (only_apk, sorted(set(ours) - set(theirs))) == ([], [])
    assert "usr/share/middle/.keep_" in ours and "var/lib/middle/.keep_dir" in ours
    merged = [
        (ours[p].mode, ours[p].uid, ours[p].gid) for p in ("opt/and-ed", "opt/lower-owner", "opt/lower-gid")
    ]
    assert merged == [(0o751, 0, 0), (0o700, 0, 0), (0o700, 7, 8)]  # 0o2751 & 0o755: no setgid
    for path in set(ours) & set(theirs):
        if not _allowed(path):
            assert _differences(ours[path], theirs[path]) == [], path
    with tarfile.open(layer) as tar:
        installed = tar.extractfile("lib/apk/db/installed").read()  # type: ignore[union-attr]
    assert installed == (root / "lib/apk/db/installed").read_bytes()
    assert b"\nr:middle\nF:usr\n" in installed and installed.count(b"r:middle") == 1
