"""Full integrity check of packages: size, sha256, signature, Q1 checksum and datahash."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import re
import tarfile

import pytest
from ocibuild.apk.checksums import verify_package
from ocibuild.apk.signing import Keyring
from ocibuild.common.digests import base64_checksum as member_checksum
from ocibuild.common.digests import q1_checksum, sha256_hex
from ocibuild.errors import OciBuildError
from testutil.apkbuild import (
    OTHER_KEY,
    TEST_KEY,
    build_apk,
    keyring_pems,
    package_parts,
    reg_file,
    split_members,
)
from testutil.paths import apk_mirror

X86 = apk_mirror() / "alpine/v3.19/main/x86_64"


@pytest.fixture(scope="module")
def alpine_keys() -> Keyring:
    return Keyring.from_dir(apk_mirror() / "keys")


@pytest.fixture(scope="module")
def test_keys() -> Keyring:
    return Keyring.from_pems(keyring_pems(TEST_KEY))


def _index_entries(folder):
    with tarfile.open(folder / "APKINDEX.tar.gz") as tar:
        text = tar.extractfile("APKINDEX").read().decode()
    for block in text.strip("\n").split("\n\n"):
        fields = dict((line[0], line[2:]) for line in block.splitlines())
        yield f"{fields['P']}-{fields['V']}.apk", fields["C"], int(fields["S"])


def test_q1_and_sha256_match_independent_computation():
    data = (X86 / "tzdata-2023d-r0.apk").read_bytes()
    control = package_parts(data)["control"]
    assert q1_checksum(control) == "Q1" + base64.b64encode(hashlib.sha1(control).digest()).decode()
    assert sha256_hex(data) == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("repo", ["v3.19/main/x86_64", "v3.13/main/aarch64"])
def test_every_real_package_verifies_against_its_index_entry(alpine_keys, repo):
    folder = apk_mirror() / "alpine" / repo
    entries = list(_index_entries(folder))
    assert len(entries) in (100, 65)
    for filename, checksum, size in entries:
        data = (folder / filename).read_bytes()
        archive, info = verify_package(
            data,
            origin=filename,
            keyring=alpine_keys,
            expected_checksum=checksum,
            expected_sha256=hashlib.sha256(data).hexdigest(),
            expected_size=size,
        )
        assert f"{info.pkgname}-{info.pkgver}.apk" == filename
        assert info.datahash == hashlib.sha256(package_parts(data)["data"]).hexdigest()
        assert archive.origin == filename


def _real(name="tzdata-2023d-r0.apk"):
    data = (X86 / name).read_bytes()
    return data, q1_checksum(package_parts(data)["control"])


def test_truncated_package(alpine_keys):
    data, q1 = _real()
    short = data[:-100]
    with pytest.raises(
        OciBuildError, match=r"^tzdata-2023d-r0\.apk: size is \d+ bytes, expected \d+.*re-lock the resolve"
    ):
        verify_package(
            short,
            origin="tzdata-2023d-r0.apk",
            keyring=alpine_keys,
            expected_checksum=q1,
            expected_sha256=None,
            expected_size=len(data),
        )
    with pytest.raises(OciBuildError, match=r"^tzdata-2023d-r0\.apk: truncated"):
        verify_package(
            short,
            origin="tzdata-2023d-r0.apk",
            keyring=alpine_keys,
            expected_checksum=q1,
            expected_sha256=None,
            expected_size=None,
        )


def test_sha256_mismatch(alpine_keys):
    data, q1 = _real()
    with pytest.raises(
        OciBuildError, match=r"^https://mirror/tzdata\.apk: sha256 is [0-9a-f]{64}, expected 0{64}"
    ) as e:
        verify_package(
            data,
            origin="https://mirror/tzdata.apk",
            keyring=alpine_keys,
            expected_checksum=q1,
            expected_sha256="0" * 64,
            expected_size=len(data),
        )
    assert "\n" not in str(e.value)


def test_q1_mismatch_is_a_different_build(alpine_keys):
    data, _ = _real()
    _, other_q1 = _real("musl-1.2.4_git20230717-r4.apk")
    with pytest.raises(
        OciBuildError,
        match=rf"^t\.apk: checksum \(Q1 of the control data\) is Q1\S+, expected {re.escape(other_q1)}",
    ):
        verify_package(
            data,
            origin="t.apk",
            keyring=alpine_keys,
            expected_checksum=other_q1,
            expected_sha256=None,
            expected_size=None,
        )


def test_tampered_data_member_fails_datahash(alpine_keys):
    data, q1 = _real("busybox-1.36.1-r15.apk")
    parts = package_parts(data)
    tar_bytes = bytearray(gzip.decompress(parts["data"]))
    i = tar_bytes.index(b"BusyBox v")
    tar_bytes[i : i + 9] = b"EvilBox v"
    tampered = parts["signature"] + parts["control"] + gzip.compress(bytes(tar_bytes), mtime=0)
    with pytest.raises(
        OciBuildError, match=r"^busybox\.apk: data member sha256 is [0-9a-f]{64} but \.PKGINFO datahash"
    ):
        verify_package(
            tampered,
            origin="busybox.apk",
            keyring=alpine_keys,
            expected_checksum=q1,
            expected_sha256=None,
            expected_size=None,
        )


def test_tampered_control_member_fails_signature(alpine_keys):
    data, q1 = _real()
    parts = package_parts(data)
    control = gzip.decompress(parts["control"]).replace(b"pkgdesc = ", b"pkgdesc = X")
    tampered = parts["signature"] + gzip.compress(control, mtime=0) + parts["data"]
    with pytest.raises(OciBuildError, match=r"^tzdata\.apk: signature by .* does not match"):
        verify_package(
            tampered,
            origin="tzdata.apk",
            keyring=alpine_keys,
            expected_checksum=q1,
            expected_sha256=None,
            expected_size=None,
        )


def test_fixture_packages(alpine_keys, test_keys):
    apk = build_apk(
        "hello",
        "1.0-r0",
        files=[reg_file("usr/bin/hello", b"hello\n", mode=0o755)],
        scripts={"post-install": b"#!/bin/sh\necho hi\n"},
    )
    assert apk == build_apk(
        "hello",
        "1.0-r0",
        files=[reg_file("usr/bin/hello", b"hello\n", mode=0o755)],
        scripts={".post-install": b"#!/bin/sh\necho hi\n"},
    )  # deterministic
    q1 = q1_checksum(package_parts(apk)["control"])
    archive, info = verify_package(
        apk,
        origin="hello.apk",
        keyring=test_keys,
        expected_checksum=q1,
        expected_sha256=sha256_hex(apk),
        expected_size=len(apk),
    )
    assert (info.pkgname, info.pkgver) == ("hello", "1.0-r0")
    assert archive.control_files[".post-install"] == b"#!/bin/sh\necho hi\n"
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(archive.data_member))) as tar:
        member = tar.getmember("usr/bin/hello")
        assert member.pax_headers["APK-TOOLS.checksum.SHA1"] == hashlib.sha1(b"hello\n").hexdigest()
        assert tar.getnames() == ["usr", "usr/bin", "usr/bin/hello"]
    for keyring in (alpine_keys, Keyring.from_pems(keyring_pems(OTHER_KEY))):
        with pytest.raises(
            OciBuildError, match=r"^hello\.apk: signed by test@example\.com-0000\.rsa\.pub, which is not"
        ):
            verify_package(
                apk,
                origin="hello.apk",
                keyring=keyring,
                expected_checksum=q1,
                expected_sha256=None,
                expected_size=None,
            )


def test_signed_package_with_wrong_datahash(test_keys):
    apk = build_apk("liar", "1-r0", files=[reg_file("x", b"x")], datahash="ab" * 32)
    q1 = q1_checksum(package_parts(apk)["control"])
    with pytest.raises(OciBuildError, match=r"^liar\.apk: data member sha256 .* datahash says (ab){32}"):
        verify_package(
            apk,
            origin="liar.apk",
            keyring=test_keys,
            expected_checksum=q1,
            expected_sha256=None,
            expected_size=None,
        )


def test_unsigned_package_and_index_are_refused(test_keys):
    apk = build_apk("u", "1-r0", key=None)
    with pytest.raises(OciBuildError, match=r"^u\.apk: unsigned"):
        verify_package(
            apk,
            origin="u.apk",
            keyring=test_keys,
            expected_checksum=q1_checksum(apk),
            expected_sha256=None,
            expected_size=None,
        )


def test_malformed_pkginfo_in_a_signed_package(test_keys):
    apk = build_apk("bad", "1-r0", extra_pkginfo=[("size", "lots")])
    q1 = q1_checksum(package_parts(apk)["control"])
    with pytest.raises(OciBuildError, match=r"^bad\.apk: \.PKGINFO line \d+: size must be an integer"):
        verify_package(
            apk,
            origin="bad.apk",
            keyring=test_keys,
            expected_checksum=q1,
            expected_sha256=None,
            expected_size=None,
        )


# ---- a lock without the whole file's sha256/size (apko's): the pinned members are checked ----------


def _members(data: bytes):
    """(member, start, end, apko checksum) of a package, as apko pins them in its lock."""
    sig, control, payload = split_members(data)
    bounds = [("signature", 0, len(sig), "sha1"), ("control", len(sig), len(sig) + len(control), "sha1")]
    bounds.append(("data", len(sig) + len(control), len(data), "sha256"))
    return tuple((what, s, e, member_checksum(data[s:e], alg)) for what, s, e, alg in bounds)


def _verify_pinned(data: bytes, members, keyring, q1):
    return verify_package(
        data,
        origin="tzdata-2023d-r0.apk",
        keyring=keyring,
        expected_checksum=q1,
        expected_sha256=None,
        expected_size=None,
        expected_members=members,
    )


def test_member_checksums_are_apkos():
    data, _ = _real()
    sig, control, payload = split_members(data)
    members = _members(data)
    assert members[1][3] == "sha1-" + base64.b64encode(hashlib.sha1(control).digest()).decode()
    assert members[2][3] == "sha256-" + base64.b64encode(hashlib.sha256(payload).digest()).decode()


def test_every_real_package_verifies_by_its_members_alone(alpine_keys):
    for filename, checksum, _ in _index_entries(X86):
        data = (X86 / filename).read_bytes()
        archive, info = _verify_pinned(data, _members(data), alpine_keys, checksum)
        assert archive.data_range == _members(data)[2][1:3]


def test_a_re_gzipped_signature_member_is_caught_only_by_the_pins(alpine_keys):
    """The same signature, compressed anew: the signature still verifies, Q1 and datahash still match;
    without sha256/size only the pinned signature member tells the package changed."""
    data, q1 = _real()
    sig, control, payload = split_members(data)
    resigned = gzip.compress(gzip.decompress(sig), compresslevel=1, mtime=0) + control + payload
    assert resigned != data
    _verify_pinned(resigned, (), alpine_keys, q1)  # nothing else notices
    with pytest.raises(
        OciBuildError, match=r"^tzdata-2023d-r0\.apk: (size is|signature member|the signature member)"
    ) as e:
        _verify_pinned(resigned, _members(data), alpine_keys, q1)
    assert "re-lock the resolve" in str(e.value) and "\n" not in str(e.value)


def test_pinned_members_catch_changed_bytes_and_moved_members(alpine_keys):
    data, q1 = _real()
    members = _members(data)
    with pytest.raises(OciBuildError, match=r"size is \d+ bytes but its pinned members end at byte \d+"):
        _verify_pinned(data + b"\0", members, alpine_keys, q1)
    flipped = bytearray(data)
    flipped[members[2][1] + 20] ^= 1  # inside the data member
    with pytest.raises(
        OciBuildError, match=r"data member \(bytes \d+-\d+\) has checksum sha256-.*, expected sha256-"
    ):
        _verify_pinned(bytes(flipped), members, alpine_keys, q1)
    # the checksums are right for these byte ranges, but the ranges are not the package's members
    moved = list(members)
    split = members[2][1] + 10
    moved[1] = ("control", members[1][1], split, member_checksum(data[members[1][1] : split], "sha1"))
    moved[2] = ("data", split, len(data), member_checksum(data[split:], "sha256"))
    with pytest.raises(OciBuildError, match=r"the control member is bytes \d+-\d+, but the lock pins bytes"):
        _verify_pinned(data, tuple(moved), alpine_keys, q1)
