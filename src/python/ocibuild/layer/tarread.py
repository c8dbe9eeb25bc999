"""A small, strict reader of uncompressed tar streams held in memory (ustar + PAX + GNU long names).

Used for APK data members instead of `tarfile`, which is ~4x slower on many small entries and
whose name decoding depends on the host's filesystem encoding. Names are decoded as UTF-8
(surrogateescape), PAX records override header fields as POSIX says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterator, Optional

from ocibuild.errors import OciBuildError
from ocibuild.layer.tarball import byte_sum

__all__ = ["TarMember", "iter_tar"]

_BLOCK = 512


@dataclass(frozen=True)
class TarMember:
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


def _number(raw: bytes, origin: str, field: str) -> int:
    if raw[:1] in (b"\x80", b"\xff"):  # GNU base-256
        value = int.from_bytes(raw[1:], "big")
        return -((1 << (8 * len(raw) - 1)) - value) if raw[:1] == b"\xff" else value
    text = raw.split(b"\0", 1)[0].strip(b" ")
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise OciBuildError(f"{origin}: malformed tar header ({field} {raw!r})") from None


def _pax_number(pax: Dict[str, str], key: str, origin: str) -> int:
    try:
        value = int(pax[key])
    except ValueError:
        value = -1
    if value < 0:
        raise OciBuildError(f"{origin}: malformed PAX {key} record {pax[key]!r}")
    return value


def _pax_records(data: bytes, origin: str) -> Dict[str, str]:
    records: Dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space]) if space > pos else 0
        except ValueError:
            raise OciBuildError(f"{origin}: malformed PAX record at byte {pos}") from None
        record = data[space + 1 : pos + length]
        if length <= 0 or not record.endswith(b"\n") or b"=" not in record:
            raise OciBuildError(f"{origin}: malformed PAX record at byte {pos}")
        key, value = record[:-1].split(b"=", 1)
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


def iter_tar(raw: bytes, origin: str) -> Iterator[TarMember]:
    """Members in archive order (PAX/GNU meta entries folded into the next member)."""
    pos = 0
    pax: Dict[str, str] = {}
    long_name: Optional[str] = None
    long_link: Optional[str] = None
    end = len(raw)
    while pos + _BLOCK <= end:
        header = raw[pos : pos + _BLOCK]
        if header == b"\0" * _BLOCK:
            return
        stored = _number(header[148:156], origin, "checksum")
        if stored != byte_sum(header[:148] + b"        " + header[156:]):
            raise OciBuildError(f"{origin}: tar header checksum mismatch at byte {pos}")
        typeflag = header[156:157]
        size = _number(header[124:136], origin, "size")
        if "size" in pax:
            size = _pax_number(pax, "size", origin)
        data_start = pos + _BLOCK
        data_end = data_start + size
        if size < 0 or data_end > end:
            raise OciBuildError(f"{origin}: tar stream is truncated")
        pos = data_start + size + (-size % _BLOCK)
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
        name = _text(header[0:100])
        if header[257:263] == b"ustar\x00" and header[345:346] != b"\0":
            name = _text(header[345:500]) + "/" + name
        name = pax.get("path", long_name if long_name is not None else name)
        linkname = pax.get("linkpath", long_link if long_link is not None else _text(header[157:257]))
        if typeflag == b"5" or (typeflag in (b"0", b"\0") and name.endswith("/")):
            typeflag = b"5"
            name = name.rstrip("/")
        elif typeflag == b"\0" or typeflag == b"7":
            typeflag = b"0"
        yield TarMember(
            name=name,
            typeflag=typeflag,
            mode=_number(header[100:108], origin, "mode"),
            uid=_pax_number(pax, "uid", origin) if "uid" in pax else _number(header[108:116], origin, "uid"),
            gid=_pax_number(pax, "gid", origin) if "gid" in pax else _number(header[116:124], origin, "gid"),
            size=size,
            linkname=linkname,
            pax=pax,
            offset=data_start,
        )
        pax, long_name, long_link = {}, None, None
    if pos != end and raw[pos:].strip(b"\0"):
        raise OciBuildError(f"{origin}: tar stream is truncated")
