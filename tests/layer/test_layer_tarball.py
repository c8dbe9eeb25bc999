"""The generic reproducible tar.gz writer (ocibuild.layer.tarball)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import random
import shutil
import subprocess
import tarfile
import threading
import zlib

import pytest
from ocibuild.common import compression
from ocibuild.errors import OciBuildError
from ocibuild.layer import tarball
from ocibuild.layer.tarball import DIR, FILE, HARDLINK, SYMLINK, TarEntry, write_layer

ENTRIES = [
    TarEntry("etc", DIR, 0o755),
    TarEntry("etc/passwd", FILE, 0o644, content=b"root:x:0:0:root:/root:/bin/sh\n"),
    TarEntry("etc/shadow", FILE, 0o640, 0, 42, content=b"root:!::0:::::\n"),
    TarEntry("etc/mtab", SYMLINK, 0o777, link_target="/proc/mounts"),
    TarEntry("tmp", DIR, 0o1777),
    TarEntry("usr/share/zoneinfo/UTC", HARDLINK, 0o644, link_target="usr/share/zoneinfo/Etc/UTC"),
    TarEntry("usr/share/zoneinfo/Etc/UTC", FILE, 0o644, content=b"TZif2 utc"),
    TarEntry("home/nonroot", DIR, 0o755, 65532, 65532),
    TarEntry("a-b", FILE, 0o600, content=b"x" * 1000),
    TarEntry("a/b", FILE, 0o644, content=b""),
]


def build(tmp_path, entries, name="layer.tar.gz", mtime=1700000000):
    out = tmp_path / name
    blob = write_layer(entries, str(out), mtime=mtime)
    return out, blob


def test_blob_hashes_match_the_file(tmp_path):
    out, blob = build(tmp_path, ENTRIES)
    data = out.read_bytes()
    assert blob.size == len(data)
    assert blob.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert blob.diff_id == "sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest()
    assert blob.media_type == "application/vnd.oci.image.layer.v1.tar+gzip"


def test_input_order_does_not_matter(tmp_path):
    shuffled = list(ENTRIES)
    random.Random(7).shuffle(shuffled)
    a, _ = build(tmp_path, ENTRIES, "a.tar.gz")
    b, _ = build(tmp_path, shuffled, "b.tar.gz")
    assert a.read_bytes() == b.read_bytes()


def test_gzip_header_is_fixed(tmp_path):
    out, _ = build(tmp_path, ENTRIES)
    head = out.read_bytes()[:10]
    assert head[:3] == b"\x1f\x8b\x08"
    assert head[3] == 0  # no FNAME/FCOMMENT/FEXTRA
    assert head[4:8] == b"\0\0\0\0"  # mtime 0
    assert head[9] == 255  # OS unknown, whatever the host


def test_entries_sorted_parents_added_metadata_kept(tmp_path):
    out, _ = build(tmp_path, ENTRIES, mtime=1234)
    with tarfile.open(out) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == [
        "a",
        "a/b",
        "a-b",
        "etc",
        "etc/mtab",
        "etc/passwd",
        "etc/shadow",
        "home",
        "home/nonroot",
        "tmp",
        "usr",
        "usr/share",
        "usr/share/zoneinfo",
        "usr/share/zoneinfo/Etc",
        "usr/share/zoneinfo/Etc/UTC",
        "usr/share/zoneinfo/UTC",
    ]
    by_name = {m.name: m for m in members}
    assert all(m.mtime == 1234 and m.uname == "" and m.gname == "" and not m.pax_headers for m in members)
    assert by_name["a"].isdir() and by_name["a"].mode == 0o755 and by_name["a"].uid == 0
    assert by_name["tmp"].mode == 0o1777
    assert (by_name["etc/shadow"].mode, by_name["etc/shadow"].gid) == (0o640, 42)
    assert (by_name["home/nonroot"].uid, by_name["home/nonroot"].gid) == (65532, 65532)
    assert by_name["etc/mtab"].issym() and by_name["etc/mtab"].linkname == "/proc/mounts"
    assert by_name["usr/share/zoneinfo/UTC"].islnk()
    assert by_name["usr/share/zoneinfo/UTC"].linkname == "usr/share/zoneinfo/Etc/UTC"


def test_hard_link_sorting_first_carries_the_content(tmp_path):
    # "Etc/UTC" is the file and "A/UTC" (sorted first) links to it: the writer must swap them
    entries = [
        TarEntry("z/Etc/UTC", FILE, 0o644, content=b"utc data"),
        TarEntry("z/A/UTC", HARDLINK, 0o644, link_target="z/Etc/UTC"),
        TarEntry("z/B/UTC", HARDLINK, 0o644, link_target="z/Etc/UTC"),
    ]
    out, _ = build(tmp_path, entries)
    with tarfile.open(out) as tar:
        m = {x.name: x for x in tar.getmembers()}
        assert m["z/A/UTC"].isfile() and tar.extractfile("z/A/UTC").read() == b"utc data"
        assert m["z/B/UTC"].islnk() and m["z/B/UTC"].linkname == "z/A/UTC"
        assert m["z/Etc/UTC"].islnk() and m["z/Etc/UTC"].linkname == "z/A/UTC"
    dest = tmp_path / "x"
    dest.mkdir()
    subprocess.run(["tar", "-xzf", str(out), "-C", str(dest)], check=True)
    inodes = {os.stat(dest / p).st_ino for p in ("z/A/UTC", "z/B/UTC", "z/Etc/UTC")}
    assert len(inodes) == 1
    assert (dest / "z/Etc/UTC").read_bytes() == b"utc data"


def test_long_and_non_ascii_names_and_big_ids_use_pax(tmp_path):
    long_dir = "d" * 120
    entries = [
        TarEntry(f"{long_dir}/f", FILE, 0o644, 3_000_000, 3_000_001, content=b"hi"),
        TarEntry("caf\u00e9", SYMLINK, 0o777, link_target="t" * 150),
    ]
    out, _ = build(tmp_path, entries)
    with tarfile.open(out) as tar:
        m = {x.name: x for x in tar.getmembers()}
    assert (m[f"{long_dir}/f"].uid, m[f"{long_dir}/f"].gid) == (3_000_000, 3_000_001)
    assert m["caf\u00e9"].linkname == "t" * 150
    listing = subprocess.run(["tar", "-tzf", str(out)], check=True, capture_output=True).stdout.decode()
    assert f"{long_dir}/f" in listing.splitlines()
    subprocess.run(["gzip", "-t", str(out)], check=True)


def test_source_files_are_streamed(tmp_path):
    src = tmp_path / "big.bin"
    payload = os.urandom(3 * 1024 * 1024 + 17)
    src.write_bytes(payload)
    out, _ = build(tmp_path, [TarEntry("opt/big.bin", FILE, 0o755, source=str(src))])
    with tarfile.open(out) as tar:
        assert tar.extractfile("opt/big.bin").read() == payload


@pytest.mark.parametrize(
    "entries, message",
    [
        ([TarEntry("/etc/passwd", FILE, 0o644)], "absolute path"),
        ([TarEntry("etc/../../x", FILE, 0o644)], "'..'"),
        ([TarEntry("etc//x", FILE, 0o644)], "not normalized"),
        ([TarEntry("etc/x", FILE, 0o644), TarEntry("etc/x", FILE, 0o600)], "given twice"),
        ([TarEntry("etc", FILE, 0o644), TarEntry("etc/x", FILE, 0o644)], "parent etc is a file"),
        ([TarEntry("a", HARDLINK, 0o644, link_target="b")], "missing"),
        (
            [TarEntry("l", SYMLINK, 0o777, link_target="x"), TarEntry("a", HARDLINK, 0o644, link_target="l")],
            "a symlink",
        ),
    ],
)
def test_bad_entries_are_refused_and_nothing_is_written(tmp_path, entries, message):
    out = tmp_path / "out" / "layer.tar.gz"
    out.parent.mkdir()
    with pytest.raises(OciBuildError, match=message):
        write_layer(entries, str(out), mtime=0)
    assert list(out.parent.iterdir()) == []


def test_gnu_tar_extracts_the_layer(tmp_path):
    if shutil.which("tar") is None:
        pytest.skip("no tar")
    out, _ = build(tmp_path, ENTRIES)
    dest = tmp_path / "x"
    dest.mkdir()
    subprocess.run(["tar", "-xzf", str(out), "-C", str(dest), "--numeric-owner"], check=True)
    assert (dest / "etc/passwd").read_bytes() == b"root:x:0:0:root:/root:/bin/sh\n"
    assert os.readlink(dest / "etc/mtab") == "/proc/mounts"
    assert os.stat(dest / "tmp").st_mode & 0o7777 == 0o1777


def test_names_that_are_not_utf8_keep_their_raw_bytes(tmp_path):
    # A package may ship a Latin-1 file name; tarread decodes it with surrogateescape.
    raw_name = b"usr/share/caf\xe9"
    name = raw_name.decode("utf-8", "surrogateescape")
    entries = [
        TarEntry(name, FILE, 0o644, content=b"x"),
        TarEntry("usr/share/link", SYMLINK, 0o777, link_target=name.rsplit("/", 1)[1]),
    ]
    out, blob = build(tmp_path, entries)
    _, again = build(tmp_path, entries, name="again.tar.gz")
    assert again == blob
    with tarfile.open(out, encoding="utf-8", errors="surrogateescape") as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert tar.extractfile(name).read() == b"x"
    assert members["usr/share/link"].linkname == "caf\udce9"
    if shutil.which("tar") is not None:
        dest = tmp_path / "x"
        dest.mkdir()
        subprocess.run(["tar", "-xzf", str(out), "-C", str(dest)], check=True)
        assert b"caf\xe9" in os.listdir(os.fsencode(dest / "usr" / "share"))


def _gzip_members(blob: bytes):
    """The blob's gzip members, each decoded on its own (zlib stops at a member's end)."""
    members = []
    while blob:
        decoder = zlib.decompressobj(31)
        members.append(decoder.decompress(blob) + decoder.flush())
        assert decoder.eof
        blob = decoder.unused_data
    return members


def test_a_layer_is_one_gzip_member_per_block_of_tar_whatever_the_write_pattern(tmp_path, monkeypatch):
    # A small block, so that a small layer has several (the format's GZIP_MEMBER_BLOCK is 1 MiB).
    block = 64 << 10
    monkeypatch.setattr(tarball, "GZIP_MEMBER_BLOCK", block)
    rng = random.Random(7)
    # File sizes around the block size, so that blocks end inside files, in headers and at file
    # boundaries; content that compresses like real files, not like zeros.
    words = [bytes(rng.choice(b"abcdefghij") for _ in range(rng.randint(2, 9))) for _ in range(500)]
    entries = []
    for i in range(7):
        size = rng.randint(block // 3, block + 4096)
        text = b" ".join(rng.choice(words) for _ in range(size // 5))[:size]
        entries.append(TarEntry(f"data/file{i}", FILE, 0o644, content=text))
    # The same files streamed from disk (other write sizes) give the same bytes.
    (tmp_path / "src").mkdir()
    streamed = []
    for e in entries:
        source = tmp_path / "src" / e.path.replace("/", "_")
        source.write_bytes(e.content)
        streamed.append(TarEntry(e.path, FILE, 0o644, source=str(source)))
    out, blob = build(tmp_path, entries)
    out2, blob2 = build(tmp_path, streamed, name="streamed.tar.gz")
    assert out.read_bytes() == out2.read_bytes() and blob == blob2

    # Members compressed in one thread through the wheel's Python API give the same bytes too.
    monkeypatch.setattr(tarball, "GZIP_RELEASES_GIL", False)
    monkeypatch.setattr(tarball, "gzip_member", compression.gzip_member_via_python_api)
    out3, blob3 = build(tmp_path, entries, name="one-thread.tar.gz")
    assert out.read_bytes() == out3.read_bytes() and blob == blob3

    members = _gzip_members(out.read_bytes())
    tar = b"".join(members)
    assert "sha256:" + hashlib.sha256(tar).hexdigest() == blob.diff_id
    assert len(members) == -(-len(tar) // block) >= 4
    assert all(len(m) == block for m in members[:-1])
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        assert {m.name: t.extractfile(m).read() for m in t if m.isfile()} == {
            e.path: e.content for e in entries
        }


def test_a_file_that_changes_while_written_fails_and_leaves_no_worker_thread(tmp_path, monkeypatch):
    monkeypatch.setattr(tarball, "GZIP_MEMBER_BLOCK", 4096)  # members are queued when it fails
    source = tmp_path / "grows"
    source.write_bytes(b"a" * 100_000)
    real_size = TarEntry.size

    def stale_size(entry):  # the size read before the file grew
        return real_size(entry) - 1 if entry.source else real_size(entry)

    monkeypatch.setattr(TarEntry, "size", stale_size)
    before = {t.name for t in threading.enumerate()}
    with pytest.raises(OciBuildError, match="changed while it was being read"):
        build(
            tmp_path,
            [
                TarEntry("a", FILE, 0o644, content=b"x" * 50_000),
                TarEntry("b", FILE, 0o644, source=str(source)),
            ],
        )
    assert {t.name for t in threading.enumerate()} - before == set()
    assert not (tmp_path / "layer.tar.gz").exists()  # never a partial output
