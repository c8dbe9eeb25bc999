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
