"""The container format of `.apk` packages and `APKINDEX.tar.gz` indexes.

Both are concatenated gzip members: an optional signature tar (`.SIGN.RSA.<key>` / `.SIGN.RSA256.<key>`),
the control tar (`.PKGINFO` and scripts; for an index `DESCRIPTION` and `APKINDEX`) and, for packages, the
data tar. Signatures and checksums cover the raw compressed bytes of a member, so members are located by
decoding the deflate streams exactly (never by searching for the gzip magic, which may occur inside data).
"""

from __future__ import annotations

import functools
import io
import tarfile
import zlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import List, Mapping, Optional, Tuple

from ocibuild.common.compression import GZIP_WBITS, gunzip
from ocibuild.errors import OciBuildError

__all__ = ["split_gzip_members", "SignatureFile", "ApkArchive", "read_apk"]

_CHUNK = 1 << 16
_MAX_OUTPUT = _CHUNK * 16
_SIGNATURE_PREFIXES = ((".SIGN.RSA256.", "sha256"), (".SIGN.RSA.", "sha1"))


def split_gzip_members(data: bytes, origin: str) -> List[Tuple[int, int]]:
    """Byte ranges [start, end) of each concatenated gzip member of `data`.

    Decompresses in chunks and throws the output away, so memory stays small for big data members.
    """
    return _inflate_members(data, origin, keep_last=False)[0]


def _inflate_members(data: bytes, origin: str, *, keep_last: bool) -> Tuple[List[Tuple[int, int]], bytes]:
    """split_gzip_members, and (keep_last) the decompressed bytes of the last member."""
    if not data:
        raise OciBuildError(
            f"{origin}: empty file, expected gzip members: the download is corrupt, fetch it again"
        )
    ranges: List[Tuple[int, int]] = []
    start = 0
    view = memoryview(data)
    output: List[bytes] = []
    # Output thrown away: bounded input and output per call, so memory stays small (highly
    # compressible data could expand a lot). Output kept: one call per member, which runs without
    # the GIL from start to end (callers decode packages in worker threads).
    step, limit = (len(data), 0) if keep_last else (_CHUNK, _MAX_OUTPUT)
    while start < len(data):
        decoder = zlib.decompressobj(GZIP_WBITS)  # one member
        pos = start
        output = []
        keep = output.append if keep_last else _discard
        try:
            while not decoder.eof and pos < len(data):
                chunk = view[pos : pos + step]
                pos += len(chunk)
                out = decoder.decompress(chunk, limit)
                keep(out)
                # Safeguard: a call that filled its bound may have more output pending, even with all
                # its input taken.
                while not decoder.eof and (decoder.unconsumed_tail or (limit and len(out) == limit)):
                    out = decoder.decompress(decoder.unconsumed_tail, limit)
                    keep(out)
        except zlib.error as e:
            raise OciBuildError(
                f"{origin}: gzip member {len(ranges) + 1} at byte {start} is not valid gzip data ({e}): "
                "the file is corrupt or not an apk/APKINDEX, fetch it again"
            ) from None
        if not decoder.eof:
            raise OciBuildError(
                f"{origin}: truncated: gzip member {len(ranges) + 1} starting at byte {start} ends before its "
                f"end-of-stream ({len(data)} bytes in file): the download is incomplete, fetch it again"
            )
        end = pos - len(decoder.unused_data)
        ranges.append((start, end))
        start = end
    return ranges, b"".join(output)


def _discard(_: bytes) -> None:
    pass


def _file_content(tar: tarfile.TarFile, info: tarfile.TarInfo, origin: str, what: str) -> bytes:
    reader = tar.extractfile(info)
    if reader is None:  # only for non-regular members, which the caller skips
        raise OciBuildError(
            f"{origin}: {info.name!r} in the {what} member is not a regular file: the file is corrupt"
        )
    with reader:
        return reader.read()


def _tar_members(blob: bytes, origin: str, what: str) -> List[Tuple[tarfile.TarInfo, Optional[bytes]]]:
    """Members of an uncompressed tar (signature and control tars have their end blocks cut)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:") as tar:
            out: List[Tuple[tarfile.TarInfo, Optional[bytes]]] = []
            for info in tar.getmembers():
                content = _file_content(tar, info, origin, what) if info.isfile() else None
                out.append((info, content))
            return out
    except (tarfile.TarError, EOFError, OSError) as e:
        raise OciBuildError(
            f"{origin}: the {what} member is not a valid tar ({e}): the file is corrupt"
        ) from None


@dataclass(frozen=True)
class SignatureFile:
    key_name: str
    algorithm: str  # "sha1" | "sha256"
    signature: bytes


def _parse_signature_name(name: str) -> Optional[Tuple[str, str]]:
    for prefix, algorithm in _SIGNATURE_PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix) :], algorithm
    return None


@dataclass(frozen=True)
class ApkArchive:
    origin: str
    signatures: Tuple[SignatureFile, ...]
    signature_range: Optional[Tuple[int, int]]
    control_range: Tuple[int, int]
    data_range: Optional[Tuple[int, int]]
    raw: bytes = field(repr=False)
    # read_apk(inflate_data=True): the data member decompressed while the members were located
    _data_tar: List[bytes] = field(default_factory=list, repr=False, compare=False)

    def take_data_tar(self) -> Optional[bytes]:
        """The decompressed data member kept by read_apk(inflate_data=True), once (then the archive
        forgets it: it may be large); None if it was not kept or is taken, or there is no data member."""
        return self._data_tar.pop() if self._data_tar else None

    @property
    def signature_member(self) -> Optional[bytes]:
        if self.signature_range is None:
            return None
        return self.raw[self.signature_range[0] : self.signature_range[1]]

    @property
    def control_member(self) -> bytes:
        """The raw compressed control member: what signatures and the Q1 checksum cover."""
        return self.raw[self.control_range[0] : self.control_range[1]]

    @property
    def data_member(self) -> Optional[bytes]:
        """The raw compressed data member (its sha256 is `.PKGINFO`'s datahash), None for an index."""
        if self.data_range is None:
            return None
        return self.raw[self.data_range[0] : self.data_range[1]]

    @functools.cached_property  # read by verification, install-script checks and the installed db
    def control_files(self) -> Mapping[str, bytes]:
        """Regular files of the control tar by name (".PKGINFO", ".post-install", or "DESCRIPTION", "APKINDEX").
        Read-only: every reader of this archive shares the one parsed copy."""
        members = _tar_members(
            gunzip(self.control_member, f"{self.origin}: control member"), self.origin, "control"
        )
        return MappingProxyType({info.name: content for info, content in members if content is not None})


def _read_signatures(member: bytes, origin: str) -> Optional[Tuple[SignatureFile, ...]]:
    """The signature files of `member`, or None if it is not a signature member."""
    members = _tar_members(gunzip(member, f"{origin}: first member"), origin, "first")
    if not members or not all(info.name.startswith(".SIGN.") for info, _ in members):
        return None
    signatures = []
    for info, content in members:
        parsed = _parse_signature_name(info.name)
        if parsed is None or content is None:
            raise OciBuildError(
                f"{origin}: unsupported signature entry {info.name!r}: only .SIGN.RSA.<key> (SHA-1) and "
                ".SIGN.RSA256.<key> (SHA-256) are supported"
            )
        signatures.append(SignatureFile(parsed[0], parsed[1], content))
    return tuple(signatures)


def read_apk(data: bytes, origin: str, *, inflate_data: bool = False) -> ApkArchive:
    """Locate the members of an .apk (signature, control, data) or APKINDEX.tar.gz (signature, control).
    With inflate_data, the data member's decompressed bytes (decoded anyway to find where it ends) are
    kept for ApkArchive.take_data_tar, which saves decoding it twice."""
    ranges, last_member = _inflate_members(data, origin, keep_last=inflate_data)
    first = data[ranges[0][0] : ranges[0][1]]
    signatures = _read_signatures(first, origin)
    signature_range = None
    if signatures is not None:
        signature_range, ranges = ranges[0], ranges[1:]
    if not ranges:
        raise OciBuildError(
            f"{origin}: has a signature but no control member: the file is truncated, fetch it again"
        )
    if len(ranges) > 2:
        raise OciBuildError(
            f"{origin}: {len(ranges) + (signature_range is not None)} gzip members, expected at most signature, "
            "control and data: not an apk/APKINDEX file"
        )
    archive = ApkArchive(
        origin=origin,
        signatures=signatures or (),
        signature_range=signature_range,
        control_range=ranges[0],
        data_range=ranges[1] if len(ranges) == 2 else None,
        raw=data,
        _data_tar=[last_member] if inflate_data and len(ranges) == 2 else [],
    )
    # Parse the control tar now so a corrupt one fails here, naming the file.
    _ = archive.control_files
    return archive
