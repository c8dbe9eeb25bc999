"""Package checksums (apk's Q1, sha256) and the full integrity check of a downloaded .apk."""

from __future__ import annotations

import base64
import hashlib
from typing import Optional, Tuple

from ocibuild.apk.archive import ApkArchive, read_apk
from ocibuild.apk.pkginfo import PkgInfo, parse_pkginfo
from ocibuild.apk.signing import Keyring
from ocibuild.errors import OciBuildError

RELOCK_ADVICE = "re-run `./pants generate-lockfiles` if the package legitimately changed upstream"


def q1_checksum(control_member: bytes) -> str:
    """apk's package identity (index C:, lockfile checksum): "Q1" + base64(sha1(raw control member))."""
    return "Q1" + base64.b64encode(hashlib.sha1(control_member).digest()).decode("ascii")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_package(
    data: bytes,
    *,
    origin: str,
    keyring: Keyring,
    expected_checksum: str,
    expected_sha256: Optional[str],
    expected_size: Optional[int],
    advice: str = RELOCK_ADVICE,
) -> Tuple[ApkArchive, PkgInfo]:
    """Check a package's size, sha256, signature, Q1 checksum and datahash; return its parts.

    `advice` ends the message of a mismatch against the expectation (lockfile or index entry).
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
    archive = read_apk(data, origin)
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
