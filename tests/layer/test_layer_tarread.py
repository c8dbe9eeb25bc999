"""The strict tar reader used on APK data members: what our writer writes reads back, damage fails clearly."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest
from ocibuild.errors import OciBuildError
from ocibuild.layer.tarball import FILE, SYMLINK, TarEntry, write_tar_gz
from ocibuild.layer.tarread import iter_tar


def test_reads_back_long_binary_names_and_big_ids():
    odd = b"caf\xe9".decode("utf-8", "surrogateescape")
    long_name = "d" * 120 + "/f"
    entries = [
        TarEntry(odd, FILE, 0o644, content=b"x"),
        TarEntry(long_name, FILE, 0o600, 3_000_000, 7, content=b"hello"),
        TarEntry("l", SYMLINK, 0o777, link_target="t" * 150),
    ]
    out = io.BytesIO()
    write_tar_gz(entries, out, mtime=0)
    raw = gzip.decompress(out.getvalue())
    members = {m.name: m for m in iter_tar(raw, "test")}
    assert raw[members[odd].offset : members[odd].offset + 1] == b"x"
    big = members[long_name]
    assert (big.uid, big.gid, big.mode, big.size) == (3_000_000, 7, 0o600, 5)
    assert members["l"].linkname == "t" * 150
    assert members["d" * 120].typeflag == b"5"  # the writer added the parent directory


@pytest.mark.parametrize("key", ["size", "uid", "gid"])
def test_malformed_pax_numbers_fail_with_one_line(key):
    info = tarfile.TarInfo("f")
    info.size = 1
    info.pax_headers = {key: "12abc"}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(OciBuildError, match=f"pkg: malformed PAX {key} record '12abc'"):
        list(iter_tar(buf.getvalue(), "pkg"))


def test_pax_record_without_length_fails_with_one_line():
    info = tarfile.TarInfo("f")
    info.pax_headers = {"comment": "x"}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info)
    raw = buf.getvalue()
    assert raw[512:525] == b"13 comment=x\n"  # the PAX header's data block, after its 512-byte header
    damaged = raw[:512] + b"  " + raw[514:]  # the record's length is gone
    with pytest.raises(OciBuildError, match="pkg: malformed PAX record at byte 0"):
        list(iter_tar(damaged, "pkg"))


def test_pax_records_read_as_tarfile_reads_them_also_when_they_repeat():
    # APK entries repeat records ("ctime=0"), which the reader parses once; values may hold '=' and
    # newlines (the record's length, not the newline, ends it).
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(40):
            info = tarfile.TarInfo(f"dir/{'long' * 30 if i % 3 == 0 else 'f'}{i}")
            info.size = 1
            info.pax_headers = {"ctime": "0", "atime": "0", "APK-TOOLS.checksum.SHA1": f"{i:040x}"}
            if i % 5 == 0:
                info.pax_headers["comment"] = f"a=b\nc={i}"
            tar.addfile(info, io.BytesIO(b"x"))
    raw = buf.getvalue()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        expected = [(m.name, m.pax_headers) for m in tar]
    assert [(m.name, m.pax) for m in iter_tar(raw, "pkg")] == expected


def test_pax_record_without_equals_sign_fails_with_one_line():
    info = tarfile.TarInfo("f")
    info.pax_headers = {"ctime": "0", "comment": "x"}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info)
    raw = buf.getvalue()
    start = raw.index(b"13 comment=x\n")
    damaged = raw[:start] + b"13 comment x\n" + raw[start + 13 :]
    with pytest.raises(OciBuildError, match=f"pkg: malformed PAX record at byte {start - 512}"):
        list(iter_tar(damaged, "pkg"))


def _one_file_tar() -> bytes:
    info = tarfile.TarInfo("etc/motd")
    info.size = 5
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(b"hello"))
    return buf.getvalue()


def test_header_checksums_are_checked_whatever_their_spelling():
    raw = _one_file_tar()
    value = int(raw[148:154], 8)
    for spelling in (b"%06o\0 " % value, b"%07o\0" % value, b" %06o\0" % value, b"%06o  " % value):
        other = raw[:148] + spelling + raw[156:]
        assert [m.name for m in iter_tar(other, "pkg")] == ["etc/motd"], spelling
    damaged = raw[:5] + b"X" + raw[6:]  # one byte of the name
    with pytest.raises(OciBuildError, match="pkg: tar header checksum mismatch at byte 0"):
        list(iter_tar(damaged, "pkg"))
    wrong = raw[:148] + b"%06o\0 " % (value + 1) + raw[156:]
    with pytest.raises(OciBuildError, match="pkg: tar header checksum mismatch at byte 0"):
        list(iter_tar(wrong, "pkg"))


def _pax_header(records: bytes) -> bytes:
    info = tarfile.TarInfo("././@PaxHeader")
    info.type, info.size = tarfile.XHDTYPE, len(records)
    return info.tobuf(tarfile.USTAR_FORMAT) + records + bytes(-len(records) % 512)


def _file(name: str) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = 1
    return info.tobuf(tarfile.USTAR_FORMAT) + b"x" + bytes(511)


def test_a_member_with_two_pax_headers_does_not_leak_into_later_members():
    # Short payloads are parsed once and remembered; the second header's records must not end up in
    # what is remembered for the first.
    raw = (
        _pax_header(b"11 ctime=0\n")
        + _pax_header(b"13 uid=12345\n")
        + _file("a")
        + _pax_header(b"11 ctime=0\n")
        + _file("b")
        + bytes(1024)
    )
    for _ in range(2):
        members = {m.name: m for m in iter_tar(raw, "pkg")}
        assert (members["a"].uid, members["a"].pax) == (12345, {"ctime": "0", "uid": "12345"})
        assert (members["b"].uid, members["b"].pax) == (0, {"ctime": "0"})
