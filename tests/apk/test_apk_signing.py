"""Signature verification of real Alpine indexes/packages and of fixtures signed with test keys."""

from __future__ import annotations

import gzip

import pytest
from ocibuild.apk.archive import read_apk
from ocibuild.apk.signing import Keyring
from ocibuild.errors import OciBuildError
from testutil.apkbuild import (
    OTHER_KEY,
    TEST_KEY,
    TestKey,
    build_apk,
    build_index,
    keyring_pems,
    package_parts,
    signature_member,
    write_keys,
)
from testutil.paths import apk_mirror
from testutil.tars import tar_of

REPOS = {
    "v3.19/main/x86_64": "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub",
    "v3.13/main/aarch64": "alpine-devel@lists.alpinelinux.org-58199dcc.rsa.pub",
}


@pytest.fixture(scope="module")
def alpine_keys() -> Keyring:
    return Keyring.from_dir(apk_mirror() / "keys")


def test_keyring_from_dir_holds_alpines_17_keys(alpine_keys):
    names = alpine_keys.names
    assert len(names) == 17 and list(names) == sorted(names)
    assert set(REPOS.values()) <= set(names)
    path = apk_mirror() / "keys" / names[0]
    assert alpine_keys.pem(names[0]) == path.read_bytes()
    with pytest.raises(OciBuildError, match="nope.rsa.pub is not in the keyring"):
        alpine_keys.pem("nope.rsa.pub")


@pytest.mark.parametrize("repo", sorted(REPOS))
def test_real_indexes_and_every_package_verify_with_their_key(alpine_keys, repo):
    folder = apk_mirror() / "alpine" / repo
    files = sorted(folder.iterdir())
    assert len(files) in (101, 66)
    for path in files:
        assert alpine_keys.verify(read_apk(path.read_bytes(), path.name)) == REPOS[repo]


def test_key_not_in_keyring_is_named(alpine_keys):
    key = REPOS["v3.19/main/x86_64"]
    without = Keyring.from_pems({n: alpine_keys.pem(n) for n in alpine_keys.names if n != key})
    index = read_apk(
        (apk_mirror() / "alpine/v3.19/main/x86_64/APKINDEX.tar.gz").read_bytes(), "v3.19/APKINDEX.tar.gz"
    )
    with pytest.raises(
        OciBuildError, match=rf"^v3\.19/APKINDEX\.tar\.gz: signed by {key}, which is not in the keyring"
    ):
        without.verify(index)


def _retar_index_with(data: bytes, edit) -> bytes:
    """Same signature member, control member rebuilt with edited APKINDEX text."""
    parts = read_apk(data, "orig")
    files = dict(parts.control_files)
    files["APKINDEX"] = edit(files["APKINDEX"])
    control = tar_of({name: files[name] for name in ("DESCRIPTION", "APKINDEX")})
    assert parts.signature_member is not None, "the real index is signed"
    return parts.signature_member + gzip.compress(control, mtime=0)


def test_tampered_real_index_fails(alpine_keys):
    data = (apk_mirror() / "alpine/v3.19/main/x86_64/APKINDEX.tar.gz").read_bytes()
    tampered = _retar_index_with(data, lambda t: t.replace(b"V:2023d-r0", b"V:2099a-r0"))
    assert tampered != data
    with pytest.raises(
        OciBuildError, match=r"^evil/APKINDEX\.tar\.gz: signature by .*6165ee59.* does not match"
    ) as e:
        alpine_keys.verify(read_apk(tampered, "evil/APKINDEX.tar.gz"))
    assert "\n" not in str(e.value)


def test_signature_of_one_file_does_not_verify_another(alpine_keys):
    folder = apk_mirror() / "alpine/v3.19/main/x86_64"
    busybox = package_parts((folder / "busybox-1.36.1-r15.apk").read_bytes())
    musl = package_parts((folder / "musl-1.2.4_git20230717-r4.apk").read_bytes())
    franken = busybox["signature"] + musl["control"] + musl["data"]
    with pytest.raises(OciBuildError, match="does not match the control data"):
        alpine_keys.verify(read_apk(franken, "franken.apk"))


def test_unsigned_archive_is_refused():
    keyring = Keyring.from_pems(keyring_pems(TEST_KEY))
    for data in (build_apk("u", "1-r0", key=None), build_index([], key=None)):
        with pytest.raises(OciBuildError, match=r"^u\.bin: unsigned"):
            keyring.verify(read_apk(data, "u.bin"))


@pytest.mark.parametrize("algorithm", ["sha1", "sha256"])
def test_fixtures_verify_with_test_key_only(alpine_keys, algorithm):
    apk = build_apk("hello", "1.0-r0", signature_algorithm=algorithm)
    index = build_index([apk], signature_algorithm=algorithm)
    test_ring = Keyring.from_pems(keyring_pems(TEST_KEY, OTHER_KEY))
    for data in (apk, index):
        archive = read_apk(data, "fixture")
        assert test_ring.verify(archive) == TEST_KEY.name
        with pytest.raises(OciBuildError, match="not in the keyring"):
            alpine_keys.verify(archive)


def test_a_signature_named_after_a_trusted_key_but_made_by_another_fails():
    impostor = TestKey(TEST_KEY.name, OTHER_KEY.private_pem)
    data = build_apk("hello", "1.0-r0", key=impostor)
    with pytest.raises(OciBuildError, match="does not match"):
        Keyring.from_pems(keyring_pems(TEST_KEY)).verify(read_apk(data, "hello.apk"))


def test_any_trusted_signature_among_several_is_enough():
    apk = build_apk("multi", "1-r0", key=None)
    control = package_parts(apk)["control"]
    # Two signature files in one member: an untrusted key first, then the trusted one.
    members = [gzip.decompress(signature_member(control, k)) for k in (OTHER_KEY, TEST_KEY)]
    both = gzip.compress(members[0] + members[1], mtime=0)
    archive = read_apk(both + apk, "multi.apk")
    assert [s.key_name for s in archive.signatures] == [OTHER_KEY.name, TEST_KEY.name]
    assert Keyring.from_pems(keyring_pems(TEST_KEY)).verify(archive) == TEST_KEY.name


def test_bad_keys_are_rejected(tmp_path):
    with pytest.raises(OciBuildError, match="^apk key broken.rsa.pub: not a PEM public key"):
        Keyring.from_pems({"broken.rsa.pub": b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"})
    with pytest.raises(OciBuildError, match="keyring folder does not exist"):
        Keyring.from_dir(tmp_path / "missing")
    ring = Keyring.from_dir(write_keys(tmp_path / "keys", TEST_KEY, OTHER_KEY))
    assert ring.names == tuple(sorted([TEST_KEY.name, OTHER_KEY.name]))
    assert ring.pem(TEST_KEY.name) == TEST_KEY.public_pem
