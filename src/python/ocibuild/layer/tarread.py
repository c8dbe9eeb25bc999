"""A small, strict reader of uncompressed tar streams held in memory (ustar + PAX + GNU long names).

Used for APK data members instead of `tarfile`, which is ~4x slower on many small entries and
whose name decoding depends on the host's filesystem encoding. Names are decoded as UTF-8
(surrogateescape), PAX records override header fields as POSIX says.

It runs once per entry of every package of a layer, so the header is unpacked with one `struct`
call, the checksum summed in C (zlib.adler32 on the header's bytes in place) and the octal fields
that repeat (modes, owners) parsed once per distinct value.
"""

from __future__ import annotations

import struct
import zlib
from typing import Dict, Iterator, NamedTuple, Optional

from ocibuild.errors import OciBuildError

__all__ = ["TarMember", "iter_tar"]

_BLOCK = 512
_ZERO_BLOCK = bytes(_BLOCK)
# name mode uid gid size mtime chksum typeflag linkname magic version uname gname devmajor devminor prefix
_HEADER = struct.Struct("100s8s8s8s12s12s8sc100s6s2s32s32s8s8s155s")
# The checksum field counts as eight spaces.
_CHECKSUM_SPACES = 8 * 0x20


class TarMember(NamedTuple):
    name: str
    typeflag: bytes  # b"0" file, b"1" hard link, b"2" symlink, b"3"/b"4" devices, b"5" dir, b"6" fifo, ...
    mode: int
    uid: int
    gid: int
    size: int
    linkname: str
    pax: Dict[str, str]
    offset: int  # where the content starts in the stream


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


_NUMBERS: Dict[bytes, int] = {}  # octal field -> value, for the values that repeat


def _number(raw: bytes, origin: str, field: str) -> int:
    value = _NUMBERS.get(raw)
    if value is not None:
        return value
    if raw[:1] in (b"\x80", b"\xff"):  # GNU base-256
        value = int.from_bytes(raw[1:], "big")
        return -((1 << (8 * len(raw) - 1)) - value) if raw[:1] == b"\xff" else value
    text = raw.split(b"\0", 1)[0].strip(b" ")
    try:
        value = int(text, 8) if text else 0
    except ValueError:
        raise OciBuildError(f"{origin}: malformed tar header ({field} {raw!r})") from None
    if len(_NUMBERS) < 4096:
        _NUMBERS[raw] = value
    return value


def _header_sum(view: memoryview, pos: int) -> int:
    """The ustar checksum of the header at `pos`: the sum of its bytes, the checksum field counted
    as spaces. Adler-32's low half is 1 + the byte sum modulo 65521, exact for chunks of at most 256
    bytes (256 * 255 < 65521)."""
    return (
        (zlib.adler32(view[pos : pos + 148]) & 0xFFFF)
        + (zlib.adler32(view[pos + 156 : pos + 412]) & 0xFFFF)
        + (zlib.adler32(view[pos + 412 : pos + _BLOCK]) & 0xFFFF)
        - 3
        + _CHECKSUM_SPACES
    )


def _pax_number(pax: Dict[str, str], key: str, origin: str) -> int:
    try:
        value = int(pax[key])
    except ValueError:
        value = -1
    if value < 0:
        raise OciBuildError(f"{origin}: malformed PAX {key} record {pax[key]!r}")
    return value


def _pax_records(data: bytes, origin: str) -> Dict[str, str]:
    """POSIX `<length> <key>=<value>\n` records; the length counts every byte of the record."""
    records: Dict[str, str] = {}
    pos = 0
    total = len(data)
    while pos < total:
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space]) if space > pos else 0
        except ValueError:
            raise OciBuildError(f"{origin}: malformed PAX record at byte {pos}") from None
        record_end = pos + length
        equals = data.find(b"=", space + 1, record_end)
        if length <= 0 or record_end > total or equals < 0 or data[record_end - 1] != 0x0A:
            raise OciBuildError(f"{origin}: malformed PAX record at byte {pos}")
        key = data[space + 1 : equals].decode("utf-8", "surrogateescape")
        records[key] = data[equals + 1 : record_end - 1].decode("utf-8", "surrogateescape")
        pos = record_end
    return records


def iter_tar(raw: bytes, origin: str) -> Iterator[TarMember]:
    """Members in archive order (PAX/GNU meta entries folded into the next member)."""
    view = memoryview(raw)
    pos = 0
    pax: Dict[str, str] = {}
    long_name: Optional[str] = None
    long_link: Optional[str] = None
    end = len(raw)
    while pos + _BLOCK <= end:
        (
            name_f,
            mode_f,
            uid_f,
            gid_f,
            size_f,
            _,
            checksum_f,
            typeflag,
            link_f,
            magic,
            _,
            _,
            _,
            _,
            _,
            prefix_f,
        ) = _HEADER.unpack_from(raw, pos)
        if checksum_f == b"\0" * 8 and raw[pos : pos + _BLOCK] == _ZERO_BLOCK:
            return
        if _number(checksum_f, origin, "checksum") != _header_sum(view, pos):
            raise OciBuildError(f"{origin}: tar header checksum mismatch at byte {pos}")
        size = _pax_number(pax, "size", origin) if "size" in pax else _number(size_f, origin, "size")
        data_start = pos + _BLOCK
        data_end = data_start + size
        if size < 0 or data_end > end:
            raise OciBuildError(f"{origin}: tar stream is truncated")
        pos = data_end + (-size % _BLOCK)
        if typeflag in (b"x", b"g"):
            records = _pax_records(raw[data_start:data_end], origin)
            if typeflag == b"x":
                pax.update(records)
            continue
        if typeflag == b"L":
            long_name = _text(raw[data_start:data_end])
            continue
        if typeflag == b"K":
            long_link = _text(raw[data_start:data_end])
            continue
        if "path" in pax:
            name = pax["path"]
        elif long_name is not None:
            name = long_name
        else:
            name = _text(name_f)
            if magic == b"ustar\x00" and prefix_f[:1] != b"\0":
                name = _text(prefix_f) + "/" + name
        if "linkpath" in pax:
            linkname = pax["linkpath"]
        else:
            linkname = long_link if long_link is not None else _text(link_f)
        if typeflag == b"5" or (typeflag in (b"0", b"\0") and name.endswith("/")):
            typeflag = b"5"
            name = name.rstrip("/")
        elif typeflag == b"\0" or typeflag == b"7":
            typeflag = b"0"
        yield TarMember(
            name,
            typeflag,
            _number(mode_f, origin, "mode"),
            _pax_number(pax, "uid", origin) if "uid" in pax else _number(uid_f, origin, "uid"),
            _pax_number(pax, "gid", origin) if "gid" in pax else _number(gid_f, origin, "gid"),
            size,
            linkname,
            pax,
            data_start,
        )
        pax, long_name, long_link = {}, None, None
    if pos != end and raw[pos:].strip(b"\0"):
        raise OciBuildError(f"{origin}: tar stream is truncated")
