"""What a human wants to know about two packages' contents: CA roots (ca-certificates-bundle) and
time zones (tzdata), read from the packages' data members."""

from __future__ import annotations

import io
import posixpath
import tarfile
import warnings
from dataclasses import dataclass
from typing import Dict, FrozenSet, Tuple

from ocibuild.apk.archive import read_apk
from ocibuild.common.compression import gunzip
from ocibuild.errors import OciBuildError

__all__ = [
    "CA_BUNDLE_PATH",
    "ZONEINFO_DIR",
    "CaRoot",
    "DataEntry",
    "data_files",
    "ca_roots",
    "tz_zones",
    "tz_release",
    "set_changes",
]

CA_BUNDLE_PATH = "etc/ssl/certs/ca-certificates.crt"
ZONEINFO_DIR = "usr/share/zoneinfo/"
# posix/ and right/ repeat every zone (right/ with leap seconds): counting them would triple each
# change. Top-level files that are tables or metadata, not zones, are skipped by their TZif magic.
_ZONE_DUPLICATE_TREES = ("posix/", "right/")
_TZIF_MAGIC = b"TZif"


@dataclass(frozen=True, order=True)
class CaRoot:
    subject: str  # RFC 4514
    sha256: str  # colon-separated upper-case hex, as `openssl x509 -fingerprint -sha256` prints it


@dataclass(frozen=True)
class DataEntry:
    info: tarfile.TarInfo
    content: bytes  # regular files' bytes; b"" otherwise (links keep their target in info.linkname)


def data_files(apk: bytes, origin: str) -> Dict[str, DataEntry]:
    """Entries of the package's data tar by normalised path."""
    archive = read_apk(apk, origin)
    member = archive.data_member
    if member is None:
        raise OciBuildError(f"{origin}: has no data member: not a package")
    entries: Dict[str, DataEntry] = {}
    with tarfile.open(fileobj=io.BytesIO(gunzip(member, f"{origin}: data member")), mode="r:") as tar:
        for info in tar:
            name = posixpath.normpath(info.name.lstrip("/"))
            stream = tar.extractfile(info) if info.isreg() else None
            entries[name] = DataEntry(info, stream.read() if stream else b"")
    return entries


def ca_roots(apk: bytes, origin: str) -> FrozenSet[CaRoot]:
    """The certificates of the package's PEM bundle."""
    from cryptography import x509  # the core's dependency; imported here so lock-only code needs none
    from cryptography.hazmat.primitives import hashes

    entry = data_files(apk, origin).get(CA_BUNDLE_PATH)
    if entry is None or not entry.info.isreg():
        raise OciBuildError(f"{origin}: has no {CA_BUNDLE_PATH}: not a CA bundle package")
    try:
        # Old bundles hold roots with non-positive serial numbers, which cryptography still loads
        # but warns about: the fingerprint and subject are what matter here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            certificates = x509.load_pem_x509_certificates(entry.content)
    except ValueError as e:
        raise OciBuildError(f"{origin}: {CA_BUNDLE_PATH} is not a PEM bundle ({e})") from None
    return frozenset(
        CaRoot(cert.subject.rfc4514_string(), cert.fingerprint(hashes.SHA256()).hex(":").upper())
        for cert in certificates
    )


def tz_zones(apk: bytes, origin: str) -> FrozenSet[str]:
    """Zone names (`Europe/Paris`, `UTC`) the package installs: TZif files and links to them under
    usr/share/zoneinfo, without the posix/ and right/ copies."""
    entries = data_files(apk, origin)
    zones = set()
    for path, entry in entries.items():
        if not path.startswith(ZONEINFO_DIR):
            continue
        zone = path[len(ZONEINFO_DIR) :]
        if zone.startswith(_ZONE_DUPLICATE_TREES) or zone in ("posix", "right"):
            continue
        if _is_zone(entries, path, entry, depth=0):
            zones.add(zone)
    return frozenset(zones)


def _is_zone(entries: Dict[str, DataEntry], path: str, entry: DataEntry, depth: int) -> bool:
    info = entry.info
    if info.isreg():
        return entry.content.startswith(_TZIF_MAGIC)
    if depth > 8 or not (info.issym() or info.islnk()):
        return False
    if info.issym():
        target = posixpath.normpath(posixpath.join(posixpath.dirname(path), info.linkname))
    else:
        target = posixpath.normpath(info.linkname.lstrip("/"))
    linked = entries.get(target)
    return linked is not None and _is_zone(entries, target, linked, depth + 1)


def tz_release(version: str) -> str:
    """The IANA release of a tzdata package version: `2024a-r1` -> `2024a`."""
    return version.rsplit("-r", 1)[0]


def set_changes(old: FrozenSet, new: FrozenSet) -> Tuple[tuple, tuple]:
    """(added, removed), each sorted."""
    return tuple(sorted(new - old)), tuple(sorted(old - new))
