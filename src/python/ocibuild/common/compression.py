"""Layer compression: gzip shared by the apk reader, the apk layer and the OCI layer checks (the one
decoder, and the one encoder of layer blobs), and zstd for images built with `compression="zstd"`.

apk packages and OCI layer blobs are both concatenations of gzip members; one decoder reads both, so a
corrupt or truncated stream is detected the same way everywhere.

Layers are encoded with libdeflate (the `deflate` wheel, pinned by the lockfiles), not the interpreter's
`zlib`: zlib's bytes are the system libz.so.1's, so an image digest would follow whichever zlib (or
zlib-ng) a machine has. libdeflate's output is a function of (input, level, libdeflate version) only:
no streaming state, no dependence on how the input was split into calls (docs/remote-cache.md). It has
no streaming API, so a layer is a sequence of gzip members, one per GZIP_MEMBER_BLOCK bytes of the tar
(RFC 1952 multi-member; Go's compress/gzip, `gzip -d` and Python's `gzip` read it), and every reader
here decodes all members. The wheel's Python API holds the GIL while it compresses, so members are
compressed by calling the same libdeflate (the wheel's extension module exports its C API) through
ctypes, which releases the GIL: the layer writer compresses members in worker threads while it writes
the next. Where the symbols cannot be found, the Python API gives the same bytes, one member at a time.

zstd layers (`oci_image(compression="zstd")`) are re-encoded by the image build from the gzip'd
layer's tar with python-zstandard, which bundles its own libzstd: the bytes depend only on the pinned
wheel. One frame, level ZSTD_LEVEL, single-threaded (zstdmt's output depends on the worker count),
content size and checksum written, no dictionary. The streaming encoder's output does not depend on
how the input is split into writes (tests/oci/test_oci_zstd.py).
"""

from __future__ import annotations

import ctypes
import zlib
from typing import BinaryIO, Optional

import deflate
import zstandard
from ocibuild.errors import OciBuildError

__all__ = [
    "GZIP_WBITS",
    "GZIP_MEMBER_BLOCK",
    "GZIP_RELEASES_GIL",
    "gzip_member",
    "gzip_member_via_python_api",
    "gunzip",
    "GzipStream",
    "ZSTD_LEVEL",
    "zstd_compress",
    "open_zstd",
    "is_zstd",
    "ZstdStream",
    "DECOMPRESSION_ERRORS",
]

GZIP_WBITS = 31  # zlib: expect a gzip header and trailer (16 + MAX_WBITS)

# Bytes of uncompressed input per gzip member of a layer. Part of the format: changing it changes
# every layer digest. 1 MiB members compress in parallel (a 2.3 MB static layer in 3 members) for
# 0.9 % in size against one member (still 0.97x `gzip -9`; 512 KiB: 1.6 %), and bound the memory.
GZIP_MEMBER_BLOCK = 1 << 20

# Part of the format of zstd layers, like GZIP_MEMBER_BLOCK: changing it changes their digests. 19 is
# `zstd -19`: 0.62x the size of our gzip on the static layer (goal: <= 0.65x) at 1-3 MB/s, against
# 0.65x at level 17 and 0.70x at 15 (benchmarks/zstd_bench.py); decoding speed hardly depends on it.
ZSTD_LEVEL = 19
_ZSTD_CHUNK = 1 << 20
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

# What reading a corrupt gzip'd or zstd'd stream raises (gzip.open: zlib.error, EOFError, OSError).
DECOMPRESSION_ERRORS = (zlib.error, zstandard.ZstdError)


def _libdeflate() -> Optional[ctypes.CDLL]:
    """libdeflate's C API in the `deflate` wheel's extension module (already loaded), or None."""
    try:
        lib = ctypes.CDLL(deflate._deflate.__file__)
        lib.libdeflate_alloc_compressor.argtypes = [ctypes.c_int]
        lib.libdeflate_alloc_compressor.restype = ctypes.c_void_p
        lib.libdeflate_gzip_compress_bound.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        lib.libdeflate_gzip_compress_bound.restype = ctypes.c_size_t
        lib.libdeflate_gzip_compress.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_void_p,
            ctypes.c_size_t,
        ]
        lib.libdeflate_gzip_compress.restype = ctypes.c_size_t
        lib.libdeflate_free_compressor.argtypes = [ctypes.c_void_p]
        lib.libdeflate_free_compressor.restype = None
    except (OSError, AttributeError, TypeError):  # no such library or symbol: the Python API then
        return None
    return lib


_LIBDEFLATE = _libdeflate()
# Whether gzip_member runs without the GIL (so that threads compressing members run in parallel).
GZIP_RELEASES_GIL = _LIBDEFLATE is not None


def gzip_member(block: bytes, level: int) -> bytes:
    """One complete gzip member of `block` (bytes): header 1f8b 08 00 00000000 xx ff (no name, mtime 0,
    XFL 00 or 02 by level, OS "unknown"), libdeflate's deflate stream at `level` (1-12), crc32 and size.
    The same bytes on every machine for the same pinned libdeflate, through either API
    (tests/layer/test_layer_zlib_independence.py)."""
    lib = _LIBDEFLATE
    if lib is None:
        return gzip_member_via_python_api(block, level)
    if not 1 <= level <= 12:
        raise ValueError(f"libdeflate compression level {level} is out of range (1..12)")
    compressor = lib.libdeflate_alloc_compressor(level)
    if not compressor:
        raise MemoryError("libdeflate_alloc_compressor")
    try:
        bound = lib.libdeflate_gzip_compress_bound(compressor, len(block))
        out = ctypes.create_string_buffer(bound)
        size = lib.libdeflate_gzip_compress(compressor, block, len(block), out, bound)
    finally:
        lib.libdeflate_free_compressor(compressor)
    if size == 0:  # cannot happen with the bound libdeflate gave; never write a partial member
        raise OciBuildError(f"libdeflate could not compress a block of {len(block)} bytes")
    return ctypes.string_at(out, size)


def gzip_member_via_python_api(block: bytes, level: int) -> bytes:
    """gzip_member through the wheel's Python API (holds the GIL): the fallback, and the tests' reference."""
    return deflate.gzip_compress(block, level)


def gunzip(member: bytes, what: str) -> bytes:
    """The decompressed bytes of ONE complete gzip member; `what` names it in the one-line error."""
    decoder = zlib.decompressobj(GZIP_WBITS)
    try:
        data = decoder.decompress(member) + decoder.flush()
    except zlib.error as e:
        raise OciBuildError(f"{what} is not valid gzip ({e})") from None
    if not decoder.eof:
        raise OciBuildError(f"{what} is truncated (its gzip stream ends early)")
    return data


class GzipStream:
    """Incremental decoder of concatenated gzip members. `feed` returns what decompressed so far; a
    corrupt stream is recorded in `problem` (not raised) so callers can report it with their context."""

    def __init__(self) -> None:
        self._decoder = zlib.decompressobj(GZIP_WBITS)
        self.problem: Optional[str] = None

    def feed(self, chunk: bytes) -> bytes:
        out = []
        while chunk and self.problem is None:
            try:
                out.append(self._decoder.decompress(chunk))
            except zlib.error as e:
                self.problem = f"the gzip stream is corrupt ({e})"
                break
            # A new member starts on the leftovers of the one that ended.
            chunk = self._decoder.unused_data
            if chunk:
                self._decoder = zlib.decompressobj(GZIP_WBITS)
        return b"".join(out)

    def finish(self) -> Optional[str]:
        """The problem with the whole stream, if any (corrupt or truncated)."""
        if self.problem is None and not self._decoder.eof:
            self.problem = "the gzip stream is truncated"
        return self.problem


def zstd_compress(source: BinaryIO, destination: BinaryIO, size: int, what: str) -> None:
    """Write one zstd frame of the `size` bytes read from `source` to `destination`: the same bytes on
    every machine for the same pinned zstandard wheel. `size` is recorded in the frame header; `what`
    names the source in the one-line error."""
    compressor = zstandard.ZstdCompressor(
        level=ZSTD_LEVEL, write_checksum=True, write_content_size=True, write_dict_id=False, threads=0
    )
    try:
        with compressor.stream_writer(destination, size=size, closefd=False) as writer:
            for chunk in iter(lambda: source.read(_ZSTD_CHUNK), b""):
                writer.write(chunk)
    except zstandard.ZstdError as e:  # e.g. the source is not `size` bytes long
        raise OciBuildError(f"{what}: cannot encode as zstd ({e}); rebuild the layer") from None


def open_zstd(path: str) -> BinaryIO:
    """The decompressed stream of a zstd file of one or more frames (skippable frames are skipped)."""
    reader = zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), read_across_frames=True)
    return reader  # type: ignore[return-value]


def is_zstd(head: bytes) -> bool:
    """Whether a blob starting with `head` (4 bytes or more) is a zstd frame."""
    return head[:4] == _ZSTD_MAGIC


class ZstdStream:
    """Incremental decoder of concatenated zstd frames, as GzipStream is of gzip members."""

    def __init__(self) -> None:
        self._decoder = zstandard.ZstdDecompressor().decompressobj()
        self.problem: Optional[str] = None

    def feed(self, chunk: bytes) -> bytes:
        out = []
        while chunk and self.problem is None:
            if self._decoder.eof:  # the previous frame ended: these bytes start the next one
                self._decoder = zstandard.ZstdDecompressor().decompressobj()
            try:
                out.append(self._decoder.decompress(chunk))
            except zstandard.ZstdError as e:
                self.problem = f"the zstd stream is corrupt ({e})"
                break
            chunk = self._decoder.unused_data if self._decoder.eof else b""
        return b"".join(out)

    def finish(self) -> Optional[str]:
        """The problem with the whole stream, if any (corrupt or truncated)."""
        if self.problem is None and not self._decoder.eof:
            self.problem = "the zstd stream is truncated"
        return self.problem
