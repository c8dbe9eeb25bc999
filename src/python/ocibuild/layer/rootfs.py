"""The root filesystem of a layer as it is assembled, package by package, with the safety rules.

Kept in memory (path -> TarEntry) and never extracted to disk, so nothing of the host (umask,
owner, mtime, filesystem quirks) can leak in, and a hostile path can do no harm while checked.

Rules (each violation is a one-line OciBuildError naming the package and the path):
- paths are relative and normalized (no absolute paths, no '..', no '.' or empty components);
- nothing is written below a symlink: a package's path whose parent is a symlink of the layer is
  refused (whether the link leads outside the root or not), as is a path below a regular file;
- a directory and a non-directory never share a path;
- two packages may ship the same path if the entries are identical (same type, content or link
  target, mode, owner); otherwise one must declare that it replaces the other (`replaces`).
  The replacing package's entry wins, whichever was installed first (apk's rule);
- a directory shipped by several packages gets apk's merge of their metadata (src/database.c
  apk_db_dir_apply_diri_permissions): the lowest owner (uid, then gid) wins, and the modes of the
  entries with that owner are and-ed (0700 from one package and 0755 from another give 0700),
  whatever the order.
"""

from __future__ import annotations

import posixpath
from typing import Callable, Dict, List, Optional, Set

from ocibuild.errors import OciBuildError
from ocibuild.layer.tarball import DIR, HARDLINK, SYMLINK, TarEntry, check_relative_path

__all__ = ["ADDED", "IDENTICAL", "REPLACED", "KEPT", "RootFs"]

# outcomes of RootFs.install
ADDED = "added"
IDENTICAL = "identical"  # the same entry was already there: the first owner keeps it
REPLACED = "replaced"  # the new package replaces the previous owner's entry
KEPT = "kept"  # the previous owner replaces the new package: its entry stays

# replaces(a, b): does package a declare that it replaces package b?
_ReplacesFn = Callable[[str, str], bool]


def _escapes_root(link_dir: str, target: str) -> bool:
    """Would following `target` from the directory `link_dir` climb above the root?

    Absolute targets are resolved inside the image root, as the container sees them.
    """
    if target.startswith("/"):
        return False
    depth = len(link_dir.split("/")) if link_dir else 0
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def _through_symlink(who: str, path: str, link_path: str, link: TarEntry) -> OciBuildError:
    where = (
        "outside the image root"
        if _escapes_root(posixpath.dirname(link_path), link.link_target)
        else "elsewhere in the image"
    )
    return OciBuildError(
        f"{who}: {path} would be written through the symlink /{link_path} -> {link.link_target}"
        f" (leading {where}); packages must not write through symlinks"
    )


def _merged_directory(existing: TarEntry, entry: TarEntry) -> TarEntry:
    """apk's metadata of a directory two packages ship: lowest (uid, gid), modes of that owner and-ed."""
    if (entry.uid, entry.gid) < (existing.uid, existing.gid):
        return entry
    if (entry.uid, entry.gid) == (existing.uid, existing.gid):
        return TarEntry(entry.path, DIR, existing.mode & entry.mode, entry.uid, entry.gid)
    return existing


class RootFs:
    def __init__(self) -> None:
        self.entries: Dict[str, TarEntry] = {}
        self._owner: Dict[str, Optional[str]] = {}  # path -> package that owns it (None: generated)
        # Directories ("a/b/") that check_path found clear (no ancestor but directories or nothing),
        # with their ancestors, so that the files of one directory are not walked up each; emptied
        # when a non-directory is set at one of them.
        self._clear_dirs: Set[str] = set()

    def owner(self, path: str) -> Optional[str]:
        return self._owner.get(path)

    def get(self, path: str) -> Optional[TarEntry]:
        return self.entries.get(path)

    def check_path(self, path: str, who: str) -> None:
        """Validate `path` and that writing it would not go through a symlink or a file."""
        check_relative_path(path, who)
        directory = path[: path.rfind("/") + 1]  # "a/b/" for "a/b/c", "" for "c"
        if not directory or directory in self._clear_dirs:
            return
        entries = self.entries
        slash = path.find("/")
        while slash > 0:
            parent = path[:slash]
            slash = path.find("/", slash + 1)
            node = entries.get(parent)
            if node is None or node.kind == DIR:
                continue
            if node.kind == SYMLINK:
                raise _through_symlink(who, path, parent, node)
            raise OciBuildError(f"{who}: {path} would be written below /{parent}, which is a {node.kind}")
        slash = directory.find("/")
        while slash > 0:  # its ancestors were walked too: "a/", "a/b/"
            self._clear_dirs.add(directory[: slash + 1])
            slash = directory.find("/", slash + 1)

    def install(self, entry: TarEntry, package: str, replaces: _ReplacesFn) -> str:
        """Add a package's entry; returns ADDED, IDENTICAL, REPLACED or KEPT (see module docstring)."""
        who = f"package {package}"
        self.check_path(entry.path, who)
        if entry.kind == HARDLINK:
            self.check_path(entry.link_target, f"{who}: hard link {entry.path}")
        existing = self.entries.get(entry.path)
        if existing is None:
            self._store(entry, package)
            return ADDED
        previous = self._owner.get(entry.path)
        if existing.kind == DIR and entry.kind == DIR:
            self._store(_merged_directory(existing, entry), package)
            return ADDED
        if existing.kind == SYMLINK and entry.kind == DIR:
            raise _through_symlink(who, entry.path, entry.path, existing)
        if DIR in (existing.kind, entry.kind):
            raise OciBuildError(
                f"{who}: {entry.path} is a {entry.kind} but {previous or 'the layer'} has a {existing.kind} there"
            )
        if previous == package:
            raise OciBuildError(f"{who}: {entry.path} appears twice in the package")
        if existing == entry:
            return IDENTICAL
        if previous is not None and replaces(package, previous):
            self._store(entry, package)
            return REPLACED
        if previous is not None and replaces(previous, package):
            return KEPT
        raise OciBuildError(
            f"{who}: {entry.path} differs from the one of {previous or 'the layer'} and neither package"
            " declares that it replaces the other; drop one of them or add `replaces`"
        )

    def put_generated(self, entry: TarEntry) -> None:
        """Add or overwrite an entry the builder makes itself (no package owns it)."""
        self.check_path(entry.path, "layer")
        self._set(entry)
        self._owner[entry.path] = None

    def update(self, entry: TarEntry) -> None:
        """Change an existing entry (content, mode) in place; its owner package stays the owner,
        as when apk lets a script edit a file: the installed db keeps the package's checksum."""
        if entry.path not in self.entries:
            raise KeyError(entry.path)
        self._set(entry)

    def _store(self, entry: TarEntry, package: str) -> None:
        self._set(entry)
        self._owner[entry.path] = package

    def _set(self, entry: TarEntry) -> None:
        if entry.kind != DIR and entry.path + "/" in self._clear_dirs:
            self._clear_dirs.clear()  # a non-directory where one was: check every path again
        self.entries[entry.path] = entry

    def tar_entries(self) -> List[TarEntry]:
        return list(self.entries.values())
