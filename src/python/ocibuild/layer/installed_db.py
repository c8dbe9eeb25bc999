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

One quirk of apk-tools 2.14 (Alpine 3.19's apk), reproduced so that the file is byte for byte what
apk writes: `r:` and `q:` go to a line buffer that is only written out with the package's first
`F:` line. A package without directories (a meta-package such as alpine-base, which replaces
alpine-baselayout) leaves them in the buffer, so they come out in the *next* block, before that
package's own `r:`/`q:` and first `F:`; after the last package they are lost. A later apk reading
the file sees what it would have seen had it installed the packages itself.
Syft and Trivy read this file to list the image's packages and their files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ocibuild.layer.apk_contents import PackageFile
from ocibuild.layer.tarball import DIR

__all__ = ["InstalledPackage", "render_installed"]

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


def _render_package(pkg: InstalledPackage, owns: Callable[[str], bool], carried: str = "") -> Tuple[str, str]:
    """One package's block and the lines it leaves to the next block (see the module docstring).
    `owns(path)` says whether the package still owns a non-directory path (a path replaced by
    another package is listed under that package only); `carried`: the previous block's leftover."""
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
    lists = [("D", pkg.depends), ("p", pkg.provides), ("i", pkg.install_if)]
    lines += [f"{key}:{' '.join(values)}\n" for key, values in lists if values]
    buffered = carried  # apk-tools' line buffer: written with the first F: line
    if pkg.replaces:
        buffered += f"r:{' '.join(pkg.replaces)}\n"
    if pkg.replaces_priority:
        buffered += f"q:{pkg.replaces_priority}\n"
    for directory, dir_acl, files in _group_by_directory(pkg.files):
        lines.append(f"{buffered}F:{directory}\n")
        buffered = ""
        if dir_acl is not None and dir_acl != _DEFAULT_DIR_ACL:
            lines.append(_acl("M", *dir_acl))
        for pf in files:
            if not owns(pf.entry.path):
                continue
            e = pf.entry
            lines.append(f"R:{e.path.rpartition('/')[2]}\n")
            if (e.uid, e.gid, e.mode) != _DEFAULT_FILE_ACL:
                lines.append(_acl("a", e.uid, e.gid, e.mode))
            if pf.checksum:
                lines.append(f"Z:{pf.checksum}\n")
    lines.append("\n")
    return "".join(lines), buffered


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
            groups.setdefault(e.path.rpartition("/")[0], (None, []))[1].append(pf)
    return [(d, acl, fs) for d, (acl, fs) in groups.items()]


def _owned_by(owner_of: Callable[[str], Optional[str]], name: str) -> Callable[[str], bool]:
    return lambda path: owner_of(path) == name


def render_installed(packages: Sequence[InstalledPackage], owner_of: Callable[[str], Optional[str]]) -> bytes:
    """The whole file; `owner_of(path)` is the package owning a path in the final layer."""
    blocks = []
    carried = ""
    for pkg in sorted(packages, key=lambda p: p.name):
        block, carried = _render_package(pkg, _owned_by(owner_of, pkg.name), carried)
        blocks.append(block)
    # what the last block leaves in apk-tools' buffer is never written
    return "".join(blocks).encode("utf-8", "surrogateescape")
