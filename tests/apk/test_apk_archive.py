"""Splitting apk/APKINDEX files into their gzip members, on real Alpine files and hand-made streams."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile

import pytest
from ocibuild.apk.archive import read_apk, split_gzip_members
from ocibuild.errors import OciBuildError
from testutil.apkbuild import TEST_KEY, build_apk, build_index, reg_file
from testutil.paths import apk_mirror
from testutil.tars import tar_of

REPOS = {
    "v3.19/main/x86_64": "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub",
    "v3.13/main/aarch64": "alpine-devel@lists.alpinelinux.org-58199dcc.rsa.pub",
}


def repo_dir(repo: str):
    return apk_mirror() / "alpine" / repo


def test_member_boundaries_are_exact_even_with_gzip_magic_inside_data():
    # Level 0 stores bytes verbatim, so the gzip magic appears literally inside the member:
    # searching for magic bytes would split here, decoding the deflate stream must not.
    magic_rich = b"\x1f\x8b\x08\x00" * 4000
    members = [
        gzip.compress(tar_of({".PKGINFO": b"pkgname = x\npkgver = 1-r0\n"}), mtime=0),
        gzip.compress(magic_rich, compresslevel=0, mtime=0),
        gzip.compress(b"\0" * (24 << 20), mtime=0),  # expands ~1000x: output is drained in bounded steps
        gzip.compress(b"tail", mtime=0),
    ]
    data = b"".join(members)
    assert data.count(b"\x1f\x8b\x08") > 3
    expected, start = [], 0
    for m in members:
        expected.append((start, start + len(m)))
        start += len(m)
    assert split_gzip_members(data, "x.apk") == expected


def test_real_files_split_into_members_that_decompress_alone():
    for repo in REPOS:
        for path in sorted(repo_dir(repo).iterdir())[:12]:
            data = path.read_bytes()
            ranges = split_gzip_members(data, path.name)
            assert ranges[0][0] == 0 and ranges[-1][1] == len(data)
            assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
            expected_count = 2 if path.name == "APKINDEX.tar.gz" else 3
            assert len(ranges) == expected_count, path
            # Each member is one complete gzip stream on its own.
            for start, end in ranges:
                assert data[start : start + 2] == b"\x1f\x8b"
                gzip.decompress(data[start:end])


def test_read_apk_can_keep_the_data_member_it_decoded_to_find_its_end():
    for repo in REPOS:
        for path in sorted(repo_dir(repo).iterdir())[:12]:
            data = path.read_bytes()
            assert read_apk(data, path.name).take_data_tar() is None  # not kept unless asked
            archive = read_apk(data, path.name, inflate_data=True)
            if archive.data_member is None:  # APKINDEX.tar.gz
                assert archive.take_data_tar() is None
                continue
            assert archive.take_data_tar() == gzip.decompress(archive.data_member)
            assert archive.take_data_tar() is None  # handed out once, then forgotten


def test_a_data_member_that_expands_past_the_output_bound_is_kept_whole():
    control = gzip.compress(tar_of({".PKGINFO": b"pkgname = x\npkgver = 1-r0\n"}), mtime=0)
    zeros = bytes(24 << 20)  # expands ~1000x: kept whole (one unbounded call when the output is kept)
    archive = read_apk(control + gzip.compress(zeros, mtime=0), "x.apk", inflate_data=True)
    assert archive.take_data_tar() == zeros


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"this is not gzip at all", "not valid gzip"),
    ],
)
def test_garbage_is_rejected_naming_the_file(data, message):
    with pytest.raises(OciBuildError, match=rf"^broken\.apk: .*{message}") as e:
        split_gzip_members(data, "broken.apk")
    assert "\n" not in str(e.value)


def test_truncated_member_and_trailing_garbage_are_rejected():
    apk = build_apk("hello", "1.0-r0", files=[reg_file("hello", b"x" * 5000)])
    for cut in (len(apk) - 1, len(apk) - 9, 700, 30, 5):
        with pytest.raises(OciBuildError, match=r"^hello\.apk: (truncated|gzip member)"):
            split_gzip_members(apk[:cut], "hello.apk")
    with pytest.raises(OciBuildError, match=r"^hello\.apk: "):
        split_gzip_members(apk + b"\x1f\x8b garbage", "hello.apk")


def test_read_real_package_members():
    path = repo_dir("v3.19/main/x86_64") / "busybox-1.36.1-r15.apk"
    data = path.read_bytes()
    apk = read_apk(data, path.name)
    assert [s.key_name for s in apk.signatures] == [REPOS["v3.19/main/x86_64"]]
    assert apk.signatures[0].algorithm == "sha1"
    assert len(apk.signatures[0].signature) == 512  # a 4096-bit RSA key
    assert apk.signature_range[0] == 0
    assert apk.signature_range[1] == apk.control_range[0]
    assert apk.control_range[1] == apk.data_range[0] and apk.data_range[1] == len(data)
    files = apk.control_files
    assert sorted(files) == [".PKGINFO", ".post-install", ".post-upgrade", ".trigger"]
    assert b"pkgname = busybox\n" in files[".PKGINFO"]
    # The data member is what .PKGINFO's datahash covers.
    datahash = [
        line.split(" = ")[1]
        for line in files[".PKGINFO"].decode().splitlines()
        if line.startswith("datahash")
    ]
    assert hashlib.sha256(apk.data_member).hexdigest() == datahash[0]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(apk.data_member))) as tar:
        assert "bin/busybox" in tar.getnames()


def test_read_real_index_members():
    for repo, key in REPOS.items():
        path = repo_dir(repo) / "APKINDEX.tar.gz"
        index = read_apk(path.read_bytes(), str(path))
        assert [s.key_name for s in index.signatures] == [key]
        assert index.data_range is None and index.data_member is None
        files = index.control_files
        assert sorted(files) == ["APKINDEX", "DESCRIPTION"]
        assert files["DESCRIPTION"].strip() in (b"3.19.1", b"3.13.4")


def test_unsigned_package_and_index():
    apk = read_apk(build_apk("plain", "2-r0", key=None), "plain.apk")
    assert apk.signatures == () and apk.signature_range is None and apk.signature_member is None
    assert apk.control_range[0] == 0 and apk.data_range is not None
    index = read_apk(build_index([], key=None), "APKINDEX.tar.gz")
    assert index.signatures == () and index.data_range is None
    assert index.control_range == (0, len(build_index([], key=None)))


def test_sha256_signature_is_recognised():
    apk = read_apk(build_apk("s", "1-r0", signature_algorithm="sha256"), "s.apk")
    assert [(s.key_name, s.algorithm) for s in apk.signatures] == [(TEST_KEY.name, "sha256")]


def test_too_many_members_and_bad_control_tar():
    apk = build_apk("x", "1-r0")
    with pytest.raises(OciBuildError, match=r"^x\.apk: 4 gzip members"):
        read_apk(apk + gzip.compress(b"more", mtime=0), "x.apk")
    not_a_tar = gzip.compress(b"\x01" * 700, mtime=0)
    with pytest.raises(OciBuildError, match=r"^y\.apk: the first member is not a valid tar"):
        read_apk(not_a_tar, "y.apk")
