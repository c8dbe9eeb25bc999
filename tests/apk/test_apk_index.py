"""APKINDEX parsing and loading: real Alpine indexes against their packages, fixtures, malformed input."""

from __future__ import annotations

import base64
import gc
import hashlib
import logging
import re

import pytest
from ocibuild.apk.index import IndexEntry, gc_paused, load_index, parse_apkindex
from ocibuild.apk.signing import Keyring
from ocibuild.errors import OciBuildError
from testutil.apkbuild import (
    OTHER_KEY,
    TEST_KEY,
    build_apk,
    build_index,
    keyring_pems,
    package_parts,
    reg_file,
)
from testutil.paths import apk_mirror

REPOS = {
    # repo: (DESCRIPTION, signing key, entry count, architecture) as documented in apk-mirror/README.md
    "v3.19/main/x86_64": ("3.19.1", "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub", 100, "x86_64"),
    "v3.13/main/aarch64": ("3.13.4", "alpine-devel@lists.alpinelinux.org-58199dcc.rsa.pub", 65, "aarch64"),
}


@pytest.fixture(scope="module")
def alpine_keys() -> Keyring:
    return Keyring.from_dir(apk_mirror() / "keys")


@pytest.mark.parametrize("repo", sorted(REPOS))
def test_real_index_entries_match_their_packages(alpine_keys, repo):
    description, key, count, arch = REPOS[repo]
    folder = apk_mirror() / "alpine" / repo
    index = load_index((folder / "APKINDEX.tar.gz").read_bytes(), alpine_keys, f"{repo}/APKINDEX.tar.gz")
    assert (index.description, index.key_name, len(index.entries)) == (description, key, count)
    assert index.origin == f"{repo}/APKINDEX.tar.gz"
    apks = sorted(p.name for p in folder.glob("*.apk"))
    assert sorted(e.filename for e in index.entries) == apks
    for e in index.entries:
        data = (folder / e.filename).read_bytes()
        control = package_parts(data)["control"]  # split independently of ocibuild.apk.archive
        assert e.checksum == "Q1" + base64.b64encode(hashlib.sha1(control).digest()).decode()
        assert e.size == len(data)
        assert e.architecture == arch
        assert e.build_time > 1_400_000_000 and e.installed_size > 0 and len(e.commit) == 40


def test_known_real_entries(alpine_keys):
    folder = apk_mirror() / "alpine/v3.19/main/x86_64"
    index = load_index((folder / "APKINDEX.tar.gz").read_bytes(), alpine_keys, "APKINDEX.tar.gz")
    by_name = {e.name: e for e in index.entries}
    musl = by_name["musl"]
    assert musl.version == "1.2.4_git20230717-r4" and musl.origin == "musl" and musl.license == "MIT"
    assert "so:libc.musl-x86_64.so.1=1" in musl.provides
    assert by_name["tzdata"].version == "2023d-r0"
    assert by_name["alpine-baselayout"].depends == ("alpine-baselayout-data=3.4.3-r2", "/bin/sh")
    assert by_name["busybox-binsh"].provider_priority == 100
    conf = by_name["alpine-conf"]
    assert conf.depends == ("openrc>=0.24.1-r6", "busybox>=1.26.1-r3", "so:libc.musl-x86_64.so.1")
    assert conf.url == "https://git.alpinelinux.org/alpine-conf/about"
    assert any(e.install_if for e in index.entries)


def test_fixture_index_round_trip_and_keys(alpine_keys):
    apks = [
        build_apk(
            "hello",
            "1.0-r0",
            files=[reg_file("usr/bin/hello", b"hi")],
            depends=["so:libc.musl-x86_64.so.1"],
            provides=["cmd:hello=1.0-r0"],
            install_if=["a", "b=1"],
            provider_priority=5,
        ),
        build_apk("lib", "2.3_p1-r2", arch="noarch", description="a library"),
    ]
    data = build_index(apks, description="fixture repo")
    assert data == build_index(apks, description="fixture repo")  # deterministic
    index = load_index(data, Keyring.from_pems(keyring_pems(TEST_KEY)), "fixture/APKINDEX.tar.gz")
    assert index.description == "fixture repo" and index.key_name == TEST_KEY.name
    hello, lib = index.entries
    assert hello.filename == "hello-1.0-r0.apk" and lib.filename == "lib-2.3_p1-r2.apk"
    assert hello.size == len(apks[0])
    assert (
        hello.checksum
        == "Q1" + base64.b64encode(hashlib.sha1(package_parts(apks[0])["control"]).digest()).decode()
    )
    assert hello.depends == ("so:libc.musl-x86_64.so.1",) and hello.provides == ("cmd:hello=1.0-r0",)
    assert hello.install_if == ("a", "b=1") and hello.provider_priority == 5
    assert lib.architecture == "noarch" and lib.description == "a library"
    with pytest.raises(
        OciBuildError, match=r"^fixture/APKINDEX\.tar\.gz: signed by test@example\.com.*not in the keyring"
    ):
        load_index(data, alpine_keys, "fixture/APKINDEX.tar.gz")
    with pytest.raises(OciBuildError, match="not in the keyring"):
        load_index(data, Keyring.from_pems(keyring_pems(OTHER_KEY)), "fixture/APKINDEX.tar.gz")


def test_load_index_refuses_unsigned_tampered_and_packages():
    keyring = Keyring.from_pems(keyring_pems(TEST_KEY))
    with pytest.raises(OciBuildError, match=r"^r/APKINDEX\.tar\.gz: unsigned"):
        load_index(build_index([], key=None), keyring, "r/APKINDEX.tar.gz")
    good = build_index([build_apk("a", "1-r0")])
    unsigned_other = build_index([build_apk("a", "2-r0")], key=None)
    swapped = package_parts(good)["signature"] + unsigned_other  # a's signature, different contents
    with pytest.raises(OciBuildError, match=r"^r/APKINDEX\.tar\.gz: signature by .* does not match"):
        load_index(swapped, keyring, "r/APKINDEX.tar.gz")
    with pytest.raises(OciBuildError, match=r"^a\.apk: has a data member: this is a package"):
        load_index(build_apk("a", "1-r0"), keyring, "a.apk")


def test_truncated_index_is_refused():
    data = build_index([build_apk("a", "1-r0")])
    with pytest.raises(OciBuildError, match=r"^r/APKINDEX\.tar\.gz: truncated"):
        load_index(data[:-20], Keyring.from_pems(keyring_pems(TEST_KEY)), "r/APKINDEX.tar.gz")


GOOD_BLOCK = "C:Q1abc=\nP:a\nV:1.0-r0\nA:x86_64\nS:10\nI:4096\nt:1\nD:b c>=1\n"


def test_parse_apkindex_blocks_and_unknown_fields():
    text = (
        GOOD_BLOCK + "Z:future field\n\n" + GOOD_BLOCK.replace("P:a", "P:b") + "r:old-b\nq:3"
    )  # no final newline
    a, b = parse_apkindex(text, "APKINDEX")
    assert a == IndexEntry(
        name="a",
        version="1.0-r0",
        architecture="x86_64",
        size=10,
        installed_size=4096,
        checksum="Q1abc=",
        depends=("b", "c>=1"),
        build_time=1,
    )
    assert b.name == "b" and b.replaces == ("old-b",) and b.replaces_priority == 3
    assert parse_apkindex("", "APKINDEX") == [] and parse_apkindex("\n\n", "APKINDEX") == []


@pytest.mark.parametrize(
    "text, why",
    [
        (GOOD_BLOCK + "garbage line\n", r"line 18 is not 'X:value': 'garbage line'"),
        (GOOD_BLOCK.replace("S:10", "S:ten"), r"line 14: S: must be an integer, got 'ten'"),
        (GOOD_BLOCK.replace("P:a\n", ""), r"it has no P: field"),
        (GOOD_BLOCK.replace("C:Q1abc=\n", ""), r"it has no C: field"),
        (GOOD_BLOCK.replace("C:Q1abc=", "C:deadbeef"), r"unsupported checksum 'deadbeef'"),
        (GOOD_BLOCK.replace("D:b c>=1", "D:b c>=1.0-r0 d>=x!"), r"invalid dependency 'd>=x!'"),
        (GOOD_BLOCK.replace("D:b c>=1", "D:b\np:so:x.so.1=1 >=2"), r"invalid dependency '>=2'"),
        # 18 digits: beyond apk's version grammar, whatever else the list holds
        (
            GOOD_BLOCK.replace("D:b c>=1", "D:b c>=111111111111111111"),
            r"invalid dependency 'c>=111111111111111111'",
        ),
    ],
)
def test_an_unusable_entry_is_skipped_with_a_warning_and_the_rest_serves(text, why, caplog):
    good = GOOD_BLOCK.replace("P:a", "P:ok")
    index = "\n".join([good, text, good.replace("P:ok", "P:ok2")])
    with caplog.at_level(logging.WARNING):
        entries = parse_apkindex(index, "mirror/x86_64/APKINDEX.tar.gz")
    assert [e.name for e in entries] == ["ok", "ok2"]
    (warning,) = [r.getMessage() for r in caplog.records]
    assert re.match(
        r"^mirror/x86_64/APKINDEX\.tar\.gz: skipping APKINDEX entry \S+ \(line 10\): " + why, warning
    )
    assert "\n" not in warning


def test_versions_apk_accepts_are_accepted(caplog):
    # From Alpine's real indexes: aspell-ru (main) and librasterlite2 (community); apk orders
    # even an invalid version, so an entry is never dropped for its V: alone.
    blocks = [
        GOOD_BLOCK.replace("P:a\nV:1.0-r0", f"P:p{i}\nV:{v}")
        for i, v in enumerate(["0.99f7-r2", "1.1.0b1-r7", "1.0_weird"])
    ]
    with caplog.at_level(logging.WARNING):
        entries = parse_apkindex("\n".join(blocks), "APKINDEX")
    assert [e.version for e in entries] == ["0.99f7-r2", "1.1.0b1-r7", "1.0_weird"] and not caplog.records


def test_an_unusable_entry_inside_a_signed_index_is_skipped(caplog):
    data = build_index([], apkindex_text=GOOD_BLOCK + "oops\n\n" + GOOD_BLOCK.replace("P:a", "P:b"))
    index = load_index(data, Keyring.from_pems(keyring_pems(TEST_KEY)), "r/APKINDEX.tar.gz")
    assert [e.name for e in index.entries] == ["b"]
    assert (
        "r/APKINDEX.tar.gz: skipping APKINDEX entry a-1.0-r0 (line 1): line 9 is not 'X:value'" in caplog.text
    )


def test_a_bad_signature_still_fails_the_whole_index():
    data = bytearray(build_index([], apkindex_text=GOOD_BLOCK))
    data[-30] ^= 0xFF
    with pytest.raises(OciBuildError, match=r"^r/APKINDEX\.tar\.gz: "):
        load_index(bytes(data), Keyring.from_pems(keyring_pems(TEST_KEY)), "r/APKINDEX.tar.gz")


def test_gc_paused_nests_and_restores_the_collector_state():
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # it was off before: left off
    finally:
        gc.enable()
