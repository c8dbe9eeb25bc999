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

import hashlib
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence

from ocibuild.common.compression import gunzip
from ocibuild.common.digests import q1_of_sha1
from ocibuild.errors import OciBuildError
from ocibuild.layer.tarball import DIR, FILE, HARDLINK, SYMLINK, TarEntry, check_relative_path
from ocibuild.layer.tarread import iter_tar

__all__ = ["PackageFile", "install_scripts", "read_data_member", "read_data_tar", "scripts_error"]

_CHECKSUM_RECORD = "APK-TOOLS.checksum.SHA1"
_XATTR_PREFIX = "SCHILY.xattr."
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
    for m in iter_tar(raw, f"{who}: data member"):
        path = m.name
        if _skipped_by_apk(path, m.typeflag):
            continue
        check_relative_path(path, who)
        where = f"{who}: {path}"
        if any(k.startswith(_XATTR_PREFIX) for k in m.pax):
            raise OciBuildError(f"{where} has extended attributes, which the layer cannot keep")
        mode = m.mode & 0o7777
        recorded = m.pax.get(_CHECKSUM_RECORD)
        if m.typeflag == b"5":
            out.append(PackageFile(TarEntry(path, DIR, mode, m.uid, m.gid), None))
        elif m.typeflag == b"0":
            if mode & 0o6000 and not allow_setuid:
                raise OciBuildError(
                    f"{where} is setuid/setgid (mode {mode:04o}); allow it explicitly (allow_setuid)"
                )
            content = raw[m.offset : m.offset + m.size]
            checksum = _checked(recorded, content, where)
            file_checksums[path] = checksum
            out.append(PackageFile(TarEntry(path, FILE, mode, m.uid, m.gid, content), checksum))
        elif m.typeflag == b"2":
            if not m.linkname:
                raise OciBuildError(f"{where} is a symlink with an empty target")
            checksum = _checked(recorded, m.linkname.encode("utf-8", "surrogateescape"), where)
            out.append(
                PackageFile(TarEntry(path, SYMLINK, mode, m.uid, m.gid, link_target=m.linkname), checksum)
            )
        elif m.typeflag == b"1":
            target = m.linkname
            check_relative_path(target, f"{where} (hard link target)")
            if target not in file_checksums:
                raise OciBuildError(
                    f"{where} is a hard link to {target}, which is not an earlier file of the package"
                )
            link = TarEntry(path, HARDLINK, mode, m.uid, m.gid, link_target=target)
            out.append(PackageFile(link, file_checksums[target]))
        elif m.typeflag in (b"3", b"4", b"6"):
            raise OciBuildError(f"{where} is a device node or fifo; layers of packages may not contain them")
        else:
            raise OciBuildError(f"{where} has unsupported tar entry type {m.typeflag!r}")
    return out


def _skipped_by_apk(path: str, typeflag: bytes) -> bool:
    """apk installs no entry whose path starts with '.' (in the data part: it takes them for control
    files) and no non-directory whose name starts with `.keep_` (longer than that)."""
    if path.startswith("."):
        return True
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return typeflag != b"5" and len(name) > 6 and name.startswith(".keep_")


def _checked(recorded: Optional[str], content: bytes, where: str) -> Optional[str]:
    if recorded is None:
        return None  # apk records no Z: line then
    actual = hashlib.sha1(content).digest()
    try:
        expected = bytes.fromhex(recorded)
    except ValueError:
        raise OciBuildError(f"{where}: malformed {_CHECKSUM_RECORD} record {recorded!r}") from None
    if actual != expected:
        raise OciBuildError(
            f"{where}: content does not match its {_CHECKSUM_RECORD} record; the package is corrupt"
        )
    return q1_of_sha1(actual)


def scripts_error(package: str, scripts: Sequence[str]) -> OciBuildError:
    return OciBuildError(
        f"package {package} has install scripts ({', '.join(scripts)}), which are never run here; if the image"
        f" works without them, list the package in skip_scripts_of (--skip-scripts-of {package})"
    )
