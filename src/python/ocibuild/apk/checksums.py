"""Package checksums (apk's Q1, sha256) and the full integrity check of a downloaded .apk."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

from ocibuild.apk.archive import ApkArchive, read_apk
from ocibuild.apk.pkginfo import PkgInfo, parse_pkginfo
from ocibuild.apk.signing import Keyring
from ocibuild.common.digests import base64_checksum, q1_checksum, sha256_hex
from ocibuild.contract import RELOCK
from ocibuild.errors import OciBuildError

__all__ = ["verify_package"]

_RELOCK_ADVICE = f"{RELOCK} if the package legitimately changed upstream"


def _verify_members(
    data: bytes, origin: str, expected: Sequence[Tuple[str, int, int, str]], advice: str
) -> None:
    """The pinned members (apko's signature/control/data range and checksum) are exactly these bytes."""
    end = max(e for _, _, e, _ in expected)
    if len(data) != end:
        raise OciBuildError(
            f"{origin}: size is {len(data)} bytes but its pinned members end at byte {end}: the download is "
            f"incomplete or the package changed; {advice}"
        )
    for what, start, stop, checksum in expected:
        algorithm = checksum.split("-", 1)[0]
        if algorithm not in ("sha1", "sha256"):
            raise OciBuildError(f"{origin}: {what} checksum {checksum}: unsupported algorithm; {advice}")
        actual = base64_checksum(data[start:stop], algorithm)
        if actual != checksum:
            raise OciBuildError(
                f"{origin}: {what} member (bytes {start}-{stop - 1}) has checksum {actual}, expected {checksum}: "
                f"the package changed; {advice}"
            )


def verify_package(
    data: bytes,
    *,
    origin: str,
    keyring: Keyring,
    expected_checksum: str,
    expected_sha256: Optional[str],
    expected_size: Optional[int],
    expected_members: Sequence[Tuple[str, int, int, str]] = (),
    advice: str = _RELOCK_ADVICE,
    inflate_data: bool = False,
) -> Tuple[ApkArchive, PkgInfo]:
    """Check a package's size, sha256, members, signature, Q1 checksum and datahash; return its parts.

    `expected_members` are (name, start, end, checksum) of the signature, control and data members
    as apko pins them ("sha1-"/"sha256-" + base64 of the raw member): they must be exactly where the
    package's gzip members are, with these checksums. With them, a lock without the whole file's
    sha256 and size (one written by apko) still pins every byte of the package.
    `advice` ends the message of a mismatch against the expectation (lockfile or index entry).
    `inflate_data`: keep the decompressed data member for ApkArchive.take_data_tar (see read_apk).
    """
    if expected_size is not None and len(data) != expected_size:
        raise OciBuildError(
            f"{origin}: size is {len(data)} bytes, expected {expected_size}: the download is incomplete or the "
            f"package changed; {advice}"
        )
    if expected_sha256 is not None:
        actual = sha256_hex(data)
        if actual != expected_sha256:
            raise OciBuildError(
                f"{origin}: sha256 is {actual}, expected {expected_sha256}: the package changed; {advice}"
            )
    if expected_members:
        _verify_members(data, origin, expected_members, advice)
    archive = read_apk(data, origin, inflate_data=inflate_data)
    if expected_members:
        found = {
            "signature": archive.signature_range,
            "control": archive.control_range,
            "data": archive.data_range,
        }
        for what, start, stop, _ in expected_members:
            member_range = found.get(what)
            if member_range != (start, stop):
                at = "missing" if member_range is None else f"bytes {member_range[0]}-{member_range[1] - 1}"
                raise OciBuildError(
                    f"{origin}: the {what} member is {at}, but the lock pins bytes {start}-{stop - 1}: "
                    f"the package changed; {advice}"
                )
    keyring.verify(archive)
    checksum = q1_checksum(archive.control_member)
    if checksum != expected_checksum:
        raise OciBuildError(
            f"{origin}: checksum (Q1 of the control data) is {checksum}, expected {expected_checksum}: a different "
            f"build of the package; {advice}"
        )
    if archive.data_member is None:
        raise OciBuildError(f"{origin}: no data member: this is not a package (an index?) or it is truncated")
    try:
        pkginfo_text = archive.control_files[".PKGINFO"].decode("utf-8")
    except KeyError:
        raise OciBuildError(f"{origin}: no .PKGINFO in the control member: not an apk package") from None
    except UnicodeDecodeError as e:
        raise OciBuildError(f"{origin}: .PKGINFO is not UTF-8 text ({e}): the package is malformed") from None
    info = parse_pkginfo(pkginfo_text, origin)
    if not info.datahash:
        raise OciBuildError(
            f"{origin}: .PKGINFO has no datahash, so its files cannot be verified: unsupported package"
        )
    datahash = sha256_hex(archive.data_member)
    if datahash != info.datahash:
        raise OciBuildError(
            f"{origin}: data member sha256 is {datahash} but .PKGINFO datahash says {info.datahash}: the package's "
            "files were modified after signing; do not use it"
        )
    return archive, info
