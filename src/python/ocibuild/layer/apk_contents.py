"""The files of an APK's data member as layer entries, with the checks that concern one package.

- entries apk-tools skips are skipped too (src/database.c apk_db_install_archive_entry): any path
  starting with '.' (`.dummy`, the placeholder of packages without files, like alpine-base's), and
  non-directories named `.keep_*` (empty-directory markers);
- device nodes, fifos and unknown entry types are refused (a layer of packages has no use for them);
- setuid/setgid regular files are refused unless explicitly allowed;
- extended attributes are refused (they would be silently lost: the layer format we write has none);
- ownership is the numeric uid/gid of the tar header (apk would map the user/group *names* through
  the image's /etc/passwd, which only matters for accounts made by install scripts, never run here);
- the `APK-TOOLS.checksum.SHA1` PAX record of each file/symlink is checked against the content
  (symlinks: against the link target) and kept, as "Q1" + base64, for lib/apk/db/installed;
  a hard link gets the checksum of its target, as apk records it.
"""

from __future__ import annotations

from dataclasses import dataclass
from hashlib import sha1
from typing import Dict, List, Mapping, Optional, Sequence

from ocibuild.common.compression import gunzip
from ocibuild.common.digests import q1_of_sha1
from ocibuild.errors import OciBuildError
from ocibuild.layer.tarball import DIR, FILE, HARDLINK, SYMLINK, TarEntry, check_relative_path
from ocibuild.layer.tarread import iter_tar

__all__ = ["PackageFile", "install_scripts", "read_data_member", "read_data_tar", "scripts_error"]

_CHECKSUM_RECORD = "APK-TOOLS.checksum.SHA1"
_XATTR_PREFIX = "SCHILY.xattr."
# PAX keys of APK entries that are no extended attribute (checked in C before the slower scan)
_PLAIN_PAX_KEYS = frozenset(
    ("atime", "ctime", "mtime", "path", "linkpath", "uid", "gid", "size", "uname", "gname", _CHECKSUM_RECORD)
)
# control members that are install scripts (anything but .PKGINFO counts, to be safe)
_NOT_SCRIPTS = (".PKGINFO",)


@dataclass(frozen=True)
class PackageFile:
    entry: TarEntry
    checksum: Optional[str]  # "Q1..." as lib/apk/db/installed's Z:, None for directories


def install_scripts(control_files: Mapping[str, bytes]) -> List[str]:
    """Names of the package's install scripts (.pre-install, .post-install, .trigger, ...)."""
    return sorted(n for n in control_files if n not in _NOT_SCRIPTS and not n.startswith(".SIGN."))


def read_data_member(data_member: bytes, package: str, *, allow_setuid: bool = False) -> List[PackageFile]:
    """Entries of the (compressed) data member in archive order; see the module docstring for the checks."""
    raw = gunzip(data_member, f"package {package}: data member")
    return read_data_tar(raw, package, allow_setuid=allow_setuid)


def read_data_tar(raw: bytes, package: str, *, allow_setuid: bool = False) -> List[PackageFile]:
    """Entries of the decompressed data member, as read_data_member."""
    who = f"package {package}"
    out: List[PackageFile] = []
    file_checksums: Dict[str, Optional[str]] = {}
    # Runs for every file of every package: messages are formatted only on error.
    for m in iter_tar(raw, f"{who}: data member"):
        path, typeflag, pax = m.name, m.typeflag, m.pax
        if (path[:1] == "." or ".keep_" in path) and _skipped_by_apk(path, typeflag):
            continue
        check_relative_path(path, who)
        if not _PLAIN_PAX_KEYS.issuperset(pax) and any(k.startswith(_XATTR_PREFIX) for k in pax):
            raise OciBuildError(f"{who}: {path} has extended attributes, which the layer cannot keep")
        mode = m.mode & 0o7777
        if typeflag == b"0":
            if mode & 0o6000 and not allow_setuid:
                raise OciBuildError(
                    f"{who}: {path} is setuid/setgid (mode {mode:04o}); allow it explicitly (allow_setuid)"
                )
            content = raw[m.offset : m.offset + m.size]
            checksum = _checked(pax.get(_CHECKSUM_RECORD), content, who, path)
            file_checksums[path] = checksum
            out.append(PackageFile(TarEntry(path, FILE, mode, m.uid, m.gid, content), checksum))
        elif typeflag == b"5":
            out.append(PackageFile(TarEntry(path, DIR, mode, m.uid, m.gid), None))
        elif typeflag == b"2":
            if not m.linkname:
                raise OciBuildError(f"{who}: {path} is a symlink with an empty target")
            link_bytes = m.linkname.encode("utf-8", "surrogateescape")
            checksum = _checked(pax.get(_CHECKSUM_RECORD), link_bytes, who, path)
            out.append(
                PackageFile(TarEntry(path, SYMLINK, mode, m.uid, m.gid, link_target=m.linkname), checksum)
            )
        elif typeflag == b"1":
            target = m.linkname
            if target not in file_checksums:  # (its path was checked as the file's)
                check_relative_path(target, f"{who}: {path} (hard link target)")
                raise OciBuildError(
                    f"{who}: {path} is a hard link to {target}, which is not an earlier file of the package"
                )
            link = TarEntry(path, HARDLINK, mode, m.uid, m.gid, link_target=target)
            out.append(PackageFile(link, file_checksums[target]))
        elif typeflag in (b"3", b"4", b"6"):
            raise OciBuildError(
                f"{who}: {path} is a device node or fifo; layers of packages may not contain them"
            )
        else:
            raise OciBuildError(f"{who}: {path} has unsupported tar entry type {typeflag!r}")
    return out


def _skipped_by_apk(path: str, typeflag: bytes) -> bool:
    """apk installs no entry whose path starts with '.' (in the data part: it takes them for control
    files) and no non-directory whose name starts with `.keep_` (longer than that)."""
    if path.startswith("."):
        return True
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return typeflag != b"5" and len(name) > 6 and name.startswith(".keep_")


def _checked(recorded: Optional[str], content: bytes, who: str, path: str) -> Optional[str]:
    if recorded is None:
        return None  # apk records no Z: line then
    actual = sha1(content).digest()
    if actual.hex() != recorded:  # the usual spelling; any other goes the slow way
        try:
            expected = bytes.fromhex(recorded)
        except ValueError:
            raise OciBuildError(f"{who}: {path}: malformed {_CHECKSUM_RECORD} record {recorded!r}") from None
        if actual != expected:
            raise OciBuildError(
                f"{who}: {path}: content does not match its {_CHECKSUM_RECORD} record; the package is corrupt"
            )
    return q1_of_sha1(actual)


def scripts_error(package: str, scripts: Sequence[str]) -> OciBuildError:
    return OciBuildError(
        f"package {package} has install scripts ({', '.join(scripts)}), which are never run here; if the image"
        f" works without them, list the package in skip_scripts_of (--skip-scripts-of {package})"
    )
