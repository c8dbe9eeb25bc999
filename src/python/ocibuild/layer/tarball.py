"""Reproducible gzip'd tar layers: same entries in, same bytes out, on any machine.

Generic (no APK knowledge): the APK layer builder and the image code both hand it `TarEntry`s.

What makes the bytes stable:
- entries sorted by path components (the order `tar --sort=name` gives: a directory, then its
  contents), every parent directory present (added as 0755 root:root when missing);
- one fixed mtime for every entry, uid/gid numeric only (empty user/group names), no atime/ctime,
  no PAX records except `path`/`linkpath`/`uid`/`gid`/`size` when a value does not fit ustar
  (plus `hdrcharset=BINARY` for a name that is not UTF-8, which a package may have);
- headers are written here, not by `tarfile`, so the Python version cannot change them;
- hard links: the first path of a link group in sorted order carries the content, the others link
  to it (a reader needs the target before the link);
- gzip members with a fixed header (no name, mtime 0, OS byte 255 "unknown") and a fixed level,
  compressed by the pinned libdeflate (ocibuild.common.compression), not the system zlib: the blob
  digest does not change with the machine's libz.so.1 (tests/layer/test_layer_zlib_independence.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO, Deque, Dict, Iterable, List, Optional, Tuple

from ocibuild.common.atomic import atomic_output
from ocibuild.common.compression import GZIP_MEMBER_BLOCK, GZIP_RELEASES_GIL, gzip_member
from ocibuild.errors import OciBuildError

__all__ = [
    "LAYER_MEDIA_TYPE",
    "DEFAULT_GZIP_LEVEL",
    "FILE",
    "DIR",
    "SYMLINK",
    "HARDLINK",
    "TarEntry",
    "LayerBlob",
    "check_relative_path",
    "header_sum",
    "write_tar_gz",
    "write_layer",
]

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
# libdeflate level 6: smaller than zlib 6 and `gzip -9` on the static layer, at 2x zlib 6's speed;
# level 9 is larger there and 2.5x slower (benchmarks/gzip_bench.py, docs/remote-cache.md).
DEFAULT_GZIP_LEVEL = 6

FILE = "file"
DIR = "dir"
SYMLINK = "symlink"
HARDLINK = "hardlink"
_TYPEFLAG = {FILE: b"0", HARDLINK: b"1", SYMLINK: b"2", DIR: b"5"}

_BLOCK = 512
_RECORD = 20 * _BLOCK  # pad the end like GNU tar and tarfile do
_MAX_OCTAL_ID = 0o7777777
_MAX_OCTAL_SIZE = 0o77777777777
_CHUNK = 1 << 18
_PADDING = [bytes(n) for n in range(_BLOCK)]  # zeros that end a file's content on a block boundary
# Worker threads compressing gzip members (machines building layers have >= 2 cores), and how many
# compressed members may wait to be written.
_COMPRESS_THREADS = 2
_PENDING_MEMBERS = 4


@dataclass(frozen=True)
class TarEntry:
    """One path of a layer. `path` is relative ("etc/passwd"), '/'-separated, no trailing '/'.

    Files carry `content` (bytes) or `source` (a file on disk, streamed); links carry `link_target`
    (for hard links: the path of another entry of the same layer).
    """

    path: str
    kind: str
    mode: int
    uid: int = 0
    gid: int = 0
    content: bytes = b""
    source: Optional[str] = None
    link_target: str = ""

    def size(self) -> int:
        if self.kind != FILE:
            return 0
        if self.source is not None:
            return os.stat(self.source).st_size
        return len(self.content)


@dataclass(frozen=True)
class LayerBlob:
    diff_id: str  # "sha256:<hex>" of the uncompressed tar
    digest: str  # "sha256:<hex>" of the gzip stream
    size: int  # bytes of the gzip stream
    media_type: str = LAYER_MEDIA_TYPE

    def descriptor_json(self, schema: str, mtime: int, **extra: Any) -> str:
        """The `layer.json` written beside a layer blob (read back by ocibuild.oci.layers)."""
        data = {
            "schema": schema,
            "media_type": self.media_type,
            "diff_id": self.diff_id,
            "digest": self.digest,
            "size": self.size,
            "mtime": mtime,
            **extra,
        }
        return json.dumps(data, sort_keys=True, indent=2) + "\n"


def check_relative_path(path: str, what: str) -> None:
    """Refuse paths a layer must never contain: absolute, '..', '.', empty components."""
    # Fast pass (substring tests in C) for the many paths that are fine; any other path, bad or merely
    # holding a dot file, gets the detailed checks below.
    if (
        path
        and path[0] not in "/."
        and path[-1] != "/"
        and "//" not in path
        and "/." not in path
        and "\0" not in path
    ):
        return
    if not path:
        raise OciBuildError(f"{what}: empty path")
    if path.startswith("/"):
        raise OciBuildError(f"{what}: absolute path {path!r} is not allowed")
    parts = path.split("/")
    if ".." in parts:
        raise OciBuildError(f"{what}: path {path!r} contains a '..' component")
    if "" in parts or "." in parts:
        raise OciBuildError(f"{what}: path {path!r} is not normalized (empty or '.' component)")
    if "\0" in path:
        raise OciBuildError(f"{what}: path {path!r} contains a NUL byte")


def _sort_key(path: str) -> str:
    # Component-wise: "a", "a/b", "a-b" (parents directly before their contents). With "/" as NUL,
    # the lowest character (paths hold no NUL), plain string order is component order.
    return path.replace("/", "\0")


def _normalize_entries(entries: Iterable[TarEntry]) -> List[TarEntry]:
    """Validate, add missing parents, order hard links, sort. Returns the entries as written."""
    by_path: Dict[str, TarEntry] = {}
    for entry in entries:
        check_relative_path(entry.path, "layer entry")
        if entry.kind not in _TYPEFLAG:
            raise OciBuildError(f"layer entry {entry.path}: unsupported kind {entry.kind!r}")
        if entry.path in by_path:
            raise OciBuildError(f"layer entry {entry.path}: given twice")
        if entry.kind == HARDLINK:
            check_relative_path(entry.link_target, f"hard link {entry.path}")
        by_path[entry.path] = entry
    for path in list(by_path):
        # Walk up until a parent that is present: its own parents are checked when it is.
        slash = path.rfind("/")
        while slash > 0:
            parent = path[:slash]
            existing = by_path.get(parent)
            if existing is not None:
                if existing.kind != DIR:
                    raise OciBuildError(
                        f"layer entry {path}: parent {parent} is a {existing.kind}, not a directory"
                    )
                break
            by_path[parent] = TarEntry(parent, DIR, 0o755)
            slash = path.rfind("/", 0, slash)
    _reorder_hardlinks(by_path)
    return [by_path[p] for p in sorted(by_path, key=_sort_key)]


def _reorder_hardlinks(by_path: Dict[str, TarEntry]) -> None:
    groups: Dict[str, List[str]] = {}
    for path, entry in by_path.items():
        if entry.kind != HARDLINK:
            continue
        target = by_path.get(entry.link_target)
        if target is None or target.kind != FILE:
            kind = "missing" if target is None else f"a {target.kind}"
            raise OciBuildError(
                f"hard link {path}: target {entry.link_target} is {kind}, not a regular file of the layer"
            )
        groups.setdefault(entry.link_target, []).append(path)
    for file_path, links in groups.items():
        members = sorted([file_path] + links, key=_sort_key)
        first = members[0]
        if first == file_path:
            continue
        original = by_path[file_path]
        by_path[first] = TarEntry(
            first, FILE, original.mode, original.uid, original.gid, original.content, original.source
        )
        for other in members[1:]:
            by_path[other] = TarEntry(
                other, HARDLINK, original.mode, original.uid, original.gid, link_target=first
            )


def header_sum(header: Any, offset: int = 0) -> int:
    """The sum of the bytes of the 512-byte tar header at `offset` of `header` (bytes or memoryview),
    in two C calls: Adler-32's low half is 1 + the byte sum modulo 65521, exact for 256 bytes
    (256 * 255 < 65521). Shared by the writer and the reader (ocibuild.layer.tarread)."""
    return (
        (zlib.adler32(header[offset : offset + 256]) & 0xFFFF)
        + (zlib.adler32(header[offset + 256 : offset + _BLOCK]) & 0xFFFF)
        - 2
    )


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def _pax_record(key: str, value: str) -> bytes:
    # surrogateescape: a name that was not UTF-8 in the package keeps its raw bytes (see hdrcharset)
    payload = f" {key}={value}\n".encode("utf-8", "surrogateescape")
    length = len(payload) + 1
    while len(str(length)) + len(payload) != length:
        length = len(str(length)) + len(payload)
    return str(length).encode("ascii") + payload


def _is_utf8(text: str) -> bool:
    """False for names holding undecodable bytes (surrogateescape), as a package may have."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _fits(text: str, limit: int) -> bool:
    return text.isascii() and len(text) <= limit


# magic, version, uname and gname empty (numeric ids only), devmajor/devminor 0, empty prefix, padding
_HEADER_TAIL = b"ustar\x0000" + bytes(64) + _octal(0, 8) * 2 + bytes(155 + 12)
_CHECKSUM_AS_SPACES = b" " * 8  # how the checksum field counts in the checksum


def _raw_header(
    name: bytes, mode: int, uid: int, gid: int, size: int, mtime: int, typeflag: bytes, linkname: bytes
) -> bytes:
    header = b"".join(
        (
            name[:100].ljust(100, b"\0"),
            b"%07o\0%07o\0%07o\0%011o\0%011o\0" % (mode, uid, gid, size, mtime),
            _CHECKSUM_AS_SPACES,
            typeflag,
            linkname[:100].ljust(100, b"\0"),
            _HEADER_TAIL,
        )
    )
    return b"%s%06o\0 %s" % (header[:148], header_sum(header), header[156:])


def _entry_header(entry: TarEntry, size: int, mtime: int) -> bytes:
    """ustar header for `entry`, preceded by a PAX header when some value does not fit."""
    name = entry.path + "/" if entry.kind == DIR else entry.path
    link = entry.link_target if entry.kind in (SYMLINK, HARDLINK) else ""
    pax: List[bytes] = []
    if not _fits(name, 100):
        pax.append(_pax_record("path", name))
    if not _fits(link, 100):
        pax.append(_pax_record("linkpath", link))
    if not (name.isascii() and link.isascii()) and not (_is_utf8(name) and _is_utf8(link)):
        pax.append(_pax_record("hdrcharset", "BINARY"))  # POSIX: path/linkpath are raw bytes, not UTF-8
    uid, gid = entry.uid, entry.gid
    if uid > _MAX_OCTAL_ID:
        pax.append(_pax_record("uid", str(uid)))
        uid = 0
    if gid > _MAX_OCTAL_ID:
        pax.append(_pax_record("gid", str(gid)))
        gid = 0
    header_size = size
    if size > _MAX_OCTAL_SIZE:
        pax.append(_pax_record("size", str(size)))
        header_size = 0
    out = b""
    if pax:
        pax.sort(key=lambda record: record.split(b" ", 1)[1])  # by "key=value", not by length prefix
        records = b"".join(pax)
        out = _raw_header(b"././@PaxHeader", 0o644, 0, 0, len(records), mtime, b"x", b"")
        out += records + b"\0" * (-len(records) % _BLOCK)
    out += _raw_header(
        name.encode("utf-8", "surrogateescape"),
        entry.mode & 0o7777,
        uid,
        gid,
        header_size,
        mtime,
        _TYPEFLAG[entry.kind],
        link.encode("utf-8", "surrogateescape"),
    )
    return out


class _GzipSink:
    """Feeds tar bytes to sha256 (diff_id) and to gzip members of GZIP_MEMBER_BLOCK bytes each
    (ocibuild.common.compression: libdeflate, so the bytes do not depend on the system zlib).

    Blocks are cut at fixed offsets of the tar stream, so the output does not depend on write sizes.
    Members are compressed in worker threads (libdeflate runs without the GIL) while the caller writes
    the next block, and written in order; at most _PENDING_MEMBERS blocks wait (memory). The bytes
    do not depend on the number of threads.
    """

    def __init__(self, out: BinaryIO, level: int) -> None:
        self._out = out
        self._level = level
        self._tar_sha = hashlib.sha256()
        self._gz_sha = hashlib.sha256()
        self._gz_size = 0
        self._block = bytearray()
        self._written = 0
        self._pool = (
            ThreadPoolExecutor(max_workers=_COMPRESS_THREADS, thread_name_prefix="gzip")
            if GZIP_RELEASES_GIL
            else None
        )
        self._pending: Deque["Future[bytes]"] = deque()

    def _compress(self, block: bytes) -> None:
        self._tar_sha.update(block)
        if self._pool is None:
            self._emit(gzip_member(block, self._level))
            return
        self._pending.append(self._pool.submit(gzip_member, block, self._level))
        while len(self._pending) > _PENDING_MEMBERS or (self._pending and self._pending[0].done()):
            self._emit(self._pending.popleft().result())

    def _emit(self, member: bytes) -> None:
        self._gz_sha.update(member)
        self._gz_size += len(member)
        self._out.write(member)

    def write(self, data: bytes) -> None:
        block = self._block
        block += data
        self._written += len(data)
        while len(block) >= GZIP_MEMBER_BLOCK:
            self._compress(bytes(block[:GZIP_MEMBER_BLOCK]))
            del block[:GZIP_MEMBER_BLOCK]

    @property
    def written(self) -> int:
        return self._written

    def finish(self) -> Tuple[str, str, int]:
        if self._block or not self._written:  # the last, shorter member (a tar is never empty)
            self._compress(bytes(self._block))
            self._block = bytearray()
        while self._pending:
            self._emit(self._pending.popleft().result())
        return self._tar_sha.hexdigest(), self._gz_sha.hexdigest(), self._gz_size

    def close(self) -> None:
        """Stop the workers (after finish, or on an error: the queued blocks are dropped)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def write_tar_gz(
    entries: Iterable[TarEntry], out: BinaryIO, *, mtime: int, level: int = DEFAULT_GZIP_LEVEL
) -> LayerBlob:
    """Write the layer to an open binary file; see the module docstring for the guarantees."""
    if not 0 <= mtime <= _MAX_OCTAL_SIZE:
        raise OciBuildError(f"layer mtime {mtime} is out of range (0..{_MAX_OCTAL_SIZE})")
    if not 1 <= level <= 9:
        raise OciBuildError(f"gzip level {level} is out of range (1..9)")
    ordered = _normalize_entries(entries)
    sink = _GzipSink(out, level)
    try:
        for entry in ordered:
            size = entry.size()
            header = _entry_header(entry, size, mtime)
            if entry.kind != FILE:
                sink.write(header)
                continue
            padding = _PADDING[-size % _BLOCK]
            if entry.source is None and size <= _CHUNK:  # small files in memory: one write (one copy)
                sink.write(b"".join((header, entry.content, padding)))
                continue
            sink.write(header)
            if entry.source is None:
                sink.write(entry.content)
            elif _write_content(entry.source, sink) != size:
                raise OciBuildError(
                    f"layer entry {entry.path}: {entry.source} changed while it was being read"
                )
            sink.write(padding)
        sink.write(b"\0" * (2 * _BLOCK))
        sink.write(b"\0" * (-sink.written % _RECORD))
        tar_hex, gz_hex, gz_size = sink.finish()
    finally:
        sink.close()
    return LayerBlob(diff_id="sha256:" + tar_hex, digest="sha256:" + gz_hex, size=gz_size)


def _write_content(source: str, sink: _GzipSink) -> int:
    """Stream a file from disk; the bytes copied."""
    copied = 0
    with open(source, "rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                return copied
            sink.write(chunk)
            copied += len(chunk)


def write_layer(
    entries: Iterable[TarEntry], output_path: str, *, mtime: int, level: int = DEFAULT_GZIP_LEVEL
) -> LayerBlob:
    """Write a reproducible .tar.gz layer to `output_path` atomically; return its diff_id/digest/size."""
    with atomic_output(output_path) as f:
        return write_tar_gz(entries, f, mtime=mtime, level=level)
