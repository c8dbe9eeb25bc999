"""Alpine's real apk-tools 2.14.0 (shared/apk-reference/apk) as an oracle for whole installs, and the
two trees compared: the one `apk add --root DIR --initdb --no-scripts` writes on disk and the one a
layer tar holds, both read into the same plain form (no ocibuild code involved in reading them)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import platform
import stat
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, FrozenSet, List, Optional, Sequence

from testutil.paths import apk_mirror, shared_dir

ALPINE_319_REPOSITORY = ("alpine", "v3.19", "main")


def apk_reference_binary() -> Path:
    return shared_dir() / "apk-reference" / "apk"


def apk_reference_unavailable() -> Optional[str]:
    """Why the reference apk cannot run on this host (None if it can): it is an x86_64 build."""
    machine = platform.machine()
    if machine not in ("x86_64", "AMD64"):
        return f"the reference apk-tools is an x86_64 build; this host is {machine}"
    return None


def _apk_env() -> Dict[str, str]:
    env = dict(os.environ)
    if not env.get("APK_REFERENCE_DIR") and not env.get("XDG_CACHE_HOME") and not env.get("HOME"):
        # the wrapper unpacks apk-tools into ~/.cache; a test runner without HOME gets the temp dir
        env["APK_REFERENCE_DIR"] = os.path.join(tempfile.gettempdir(), "apk-reference-2.14.0")
    return env


def apk_add(
    root: Path,
    packages: Sequence[str],
    arch: str = "x86_64",
    repository: Optional[Path] = None,
    keys_dir: Optional[Path] = None,
) -> str:
    """`apk add` of `packages` into the fresh folder `root` (created; must not exist yet): --initdb,
    --no-scripts, --no-cache. From the offline Alpine 3.19 mirror and its keys unless `repository`
    (a folder holding `<arch>/APKINDEX.tar.gz`) and `keys_dir` are given. Returns apk's output."""
    root.mkdir(parents=True)
    repository = repository or apk_mirror().joinpath(*ALPINE_319_REPOSITORY)
    keys_dir = keys_dir or apk_mirror() / "keys"
    cmd = [
        str(apk_reference_binary()),
        "--root",
        str(root),
        "--initdb",
        "--no-scripts",
        "--no-cache",
        "--no-progress",
        "--arch",
        arch,
        "--keys-dir",
        str(keys_dir),
        "--repository",
        str(repository),
        "add",
        *packages,
    ]
    # apk creates its own folders (etc/apk, var/cache/apk, ...) with mkdir(0755) & ~umask
    done = subprocess.run(
        cmd, env=_apk_env(), capture_output=True, text=True, timeout=120, preexec_fn=lambda: os.umask(0o022)
    )
    if done.returncode != 0:
        raise AssertionError(
            f"apk add {' '.join(packages)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )
    return done.stdout + done.stderr


@dataclass(frozen=True)
class Node:
    """One path of a tree. `kind`: dir, file, symlink, char, block, fifo, socket. Hard links are not a
    kind: both sides report, for a regular file, the set of paths sharing its content node
    (`links`, empty when the file has one name)."""

    kind: str
    mode: int  # permission bits (07777); for symlinks the tar's mode (lstat always says 0777)
    uid: int
    gid: int
    target: str = ""  # symlinks
    sha256: str = ""  # regular files
    links: FrozenSet[str] = frozenset()
    rdev: int = 0


_KINDS = {
    stat.S_IFDIR: "dir",
    stat.S_IFREG: "file",
    stat.S_IFLNK: "symlink",
    stat.S_IFCHR: "char",
    stat.S_IFBLK: "block",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
}


def tree_of_dir(root: Path) -> Dict[str, Node]:
    """{relative path: Node} of everything below `root` (not root itself), by lstat: the owners are
    real because apk ran as root."""
    out: Dict[str, Node] = {}
    inodes: Dict[int, List[str]] = {}
    base = str(root)
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, base)
            st = os.lstat(full)
            kind = _KINDS[stat.S_IFMT(st.st_mode)]
            target, digest = "", ""
            if kind == "symlink":
                target = os.readlink(full)
            elif kind == "file":
                with open(full, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
                if st.st_nlink > 1:
                    inodes.setdefault(st.st_ino, []).append(rel)
            rdev = st.st_rdev if kind in ("char", "block") else 0
            out[rel] = Node(kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, target, digest, rdev=rdev)
    return _with_link_groups(out, inodes.values())


def _with_link_groups(out: Dict[str, Node], groups) -> Dict[str, Node]:
    """`out` with each node of a group of hard-linked names carrying the whole group."""
    for paths in groups:
        group = frozenset(paths)
        for p in paths:
            n = out[p]
            out[p] = Node(n.kind, n.mode, n.uid, n.gid, n.target, n.sha256, group)
    return out


def tree_of_layer(layer: Path) -> Dict[str, Node]:
    """The same form for a gzip'd layer tar, read with Python's tarfile; a hard link member is a regular
    file with its target's content, and the group of names is the target plus its links."""
    out: Dict[str, Node] = {}
    groups: Dict[str, List[str]] = {}
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer.read_bytes())), mode="r:") as tar:
        members = tar.getmembers()
        by_name = {m.name: m for m in members}
        for m in members:
            name = m.name.rstrip("/")
            if name in out:
                raise AssertionError(f"{name} appears twice in the layer")
            if m.isdir():
                kind = "dir"
            elif m.issym():
                kind = "symlink"
            elif m.isfile() or m.islnk():
                kind = "file"
            elif m.ischr():
                kind = "char"
            elif m.isblk():
                kind = "block"
            elif m.isfifo():
                kind = "fifo"
            else:
                raise AssertionError(f"{name}: unexpected tar type {m.type!r}")
            digest = ""
            if kind == "file":
                source = by_name[m.linkname] if m.islnk() else m
                reader = tar.extractfile(source)
                assert reader is not None, name
                digest = hashlib.sha256(reader.read()).hexdigest()
                if m.islnk():
                    groups.setdefault(m.linkname, [m.linkname]).append(name)
            rdev = os.makedev(m.devmajor, m.devminor) if kind in ("char", "block") else 0
            out[name] = Node(
                kind, m.mode & 0o7777, m.uid, m.gid, m.linkname if m.issym() else "", digest, rdev=rdev
            )
    return _with_link_groups(out, groups.values())
