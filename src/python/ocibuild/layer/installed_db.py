"""lib/apk/db/installed, byte for byte in the format apk-tools writes (src/database.c
apk_db_fdb_write + src/package.c apk_pkg_write_index_header).

Per package, a block ended by an empty line:
    C: P: V: A: S: I: T: U: L: [o:] [m:] [t:] [c:] [k:]   header (optional ones when set)
    [D:] [p:] [i:]                                       dependencies, provides, install_if
    [r:] [q:]                                            replaces, replaces_priority
    then per directory of the package, in archive order:
    F:<dir>  [M:uid:gid:mode-octal when not 0:0:755]
      R:<name> [a:uid:gid:mode-octal when not 0:0:644] [Z:Q1<base64 sha1>]   per file it owns
Packages are written sorted by name, as apk-tools does since it sorts the installed database.
Syft and Trivy read this file to list the image's packages and their files.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ocibuild.layer.apk_contents import PackageFile
from ocibuild.layer.tarball import DIR

_DEFAULT_DIR_ACL = (0, 0, 0o755)
_DEFAULT_FILE_ACL = (0, 0, 0o644)


@dataclass(frozen=True)
class InstalledPackage:
    """What one package contributes to the installed database."""

    checksum: str  # C: Q1 of the control member
    name: str
    version: str
    arch: str
    package_size: int  # S: size of the .apk file
    installed_size: int  # I:
    description: str
    url: str
    license: str
    origin: str = ""
    maintainer: str = ""
    build_time: int = 0
    commit: str = ""
    provider_priority: int = 0
    depends: Tuple[str, ...] = ()
    provides: Tuple[str, ...] = ()
    install_if: Tuple[str, ...] = ()
    replaces: Tuple[str, ...] = ()
    replaces_priority: int = 0
    files: Tuple[PackageFile, ...] = ()


def _acl(field: str, uid: int, gid: int, mode: int) -> str:
    return f"{field}:{uid}:{gid}:{mode:o}\n"


def render_package(pkg: InstalledPackage, owns: Callable[[str], bool]) -> str:
    """One package's block. `owns(path)` says whether the package still owns a non-directory path
    (a path replaced by another package is listed under that package only)."""
    lines: List[str] = [
        f"C:{pkg.checksum}\n",
        f"P:{pkg.name}\n",
        f"V:{pkg.version}\n",
        f"A:{pkg.arch}\n",
        f"S:{pkg.package_size}\n",
        f"I:{pkg.installed_size}\n",
        f"T:{pkg.description}\n",
        f"U:{pkg.url}\n",
        f"L:{pkg.license}\n",
    ]
    optional = [
        ("o", pkg.origin),
        ("m", pkg.maintainer),
        ("t", pkg.build_time or ""),
        ("c", pkg.commit),
        ("k", pkg.provider_priority or ""),
    ]
    lines += [f"{key}:{value}\n" for key, value in optional if value != ""]
    lists = [("D", pkg.depends), ("p", pkg.provides), ("i", pkg.install_if), ("r", pkg.replaces)]
    lines += [f"{key}:{' '.join(values)}\n" for key, values in lists if values]
    if pkg.replaces_priority:
        lines.append(f"q:{pkg.replaces_priority}\n")
    for directory, dir_acl, files in _group_by_directory(pkg.files):
        lines.append(f"F:{directory}\n")
        if dir_acl is not None and dir_acl != _DEFAULT_DIR_ACL:
            lines.append(_acl("M", *dir_acl))
        for pf in files:
            if not owns(pf.entry.path):
                continue
            e = pf.entry
            lines.append(f"R:{posixpath.basename(e.path)}\n")
            if (e.uid, e.gid, e.mode) != _DEFAULT_FILE_ACL:
                lines.append(_acl("a", e.uid, e.gid, e.mode))
            if pf.checksum:
                lines.append(f"Z:{pf.checksum}\n")
    lines.append("\n")
    return "".join(lines)


def _group_by_directory(
    files: Sequence[PackageFile],
) -> List[Tuple[str, Optional[Tuple[int, int, int]], List[PackageFile]]]:
    """Directories in the order apk creates them: when the archive first names them."""
    groups: Dict[str, Tuple[Optional[Tuple[int, int, int]], List[PackageFile]]] = {}
    for pf in files:
        e = pf.entry
        if e.kind == DIR:
            if e.path in groups:
                groups[e.path] = ((e.uid, e.gid, e.mode), groups[e.path][1])
            else:
                groups[e.path] = ((e.uid, e.gid, e.mode), [])
        else:
            # apk needs the directory entry before its files; tolerate its absence
            groups.setdefault(posixpath.dirname(e.path), (None, []))[1].append(pf)
    return [(d, acl, fs) for d, (acl, fs) in groups.items()]


def _owned_by(owner_of: Callable[[str], Optional[str]], name: str) -> Callable[[str], bool]:
    return lambda path: owner_of(path) == name


def render_installed(packages: Sequence[InstalledPackage], owner_of: Callable[[str], Optional[str]]) -> bytes:
    """The whole file; `owner_of(path)` is the package owning a path in the final layer."""
    blocks = [
        render_package(pkg, _owned_by(owner_of, pkg.name)) for pkg in sorted(packages, key=lambda p: p.name)
    ]
    return "".join(blocks).encode("utf-8", "surrogateescape")
