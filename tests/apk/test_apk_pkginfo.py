"""`.PKGINFO` parsing, checked against the same package's APKINDEX entry on real Alpine data."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest
from ocibuild.apk.pkginfo import parse_pkginfo
from ocibuild.errors import OciBuildError
from testutil.apkbuild import build_apk, package_parts
from testutil.paths import apk_mirror


def _index_blocks(index_path):
    with tarfile.open(index_path) as tar:
        text = tar.extractfile("APKINDEX").read().decode()
    for block in text.strip("\n").split("\n\n"):
        fields = {}
        for line in block.splitlines():
            fields[line[0]] = line[2:]
        yield fields


@pytest.mark.parametrize("repo", ["v3.19/main/x86_64", "v3.13/main/aarch64"])
def test_real_pkginfo_agrees_with_the_index(repo):
    folder = apk_mirror() / "alpine" / repo
    blocks = list(_index_blocks(folder / "APKINDEX.tar.gz"))
    assert blocks
    for block in blocks:
        name = f"{block['P']}-{block['V']}.apk"
        with tarfile.open(folder / name) as tar:  # tarfile reads the concatenated members as one stream
            text = tar.extractfile(".PKGINFO").read().decode()
        info = parse_pkginfo(text, name)
        assert (info.pkgname, info.pkgver) == (block["P"], block["V"])
        # The index lists noarch packages under the repository's architecture.
        assert info.arch in (block["A"], "noarch")
        assert (info.size, info.builddate, info.origin, info.commit) == (
            int(block["I"]),
            int(block["t"]),
            block["o"],
            block["c"],
        )
        assert (info.license, info.url, info.pkgdesc) == (block["L"], block["U"], block["T"])
        assert info.maintainer == block.get("m", "")
        assert info.depends == tuple(block.get("D", "").split())
        assert info.provides == tuple(block.get("p", "").split())
        assert info.install_if == tuple(block.get("i", "").split())
        assert info.provider_priority == (int(block["k"]) if "k" in block else None)
        assert len(info.datahash) == 64


def test_lists_on_one_line_or_many_and_unknown_keys():
    text = (
        "# comment\n"
        "pkgname = a\npkgver = 1-r0\narch = noarch\n"
        "depend = b\ndepend = c>=2\nprovides = cmd:a=1-r0 so:liba.so.1=1\n"
        "replaces = old-a\nreplaces = older-a\ninstall_if = x y=1\ntriggers = /usr/bin /usr/lib/*\n"
        "pkgdesc = has = inside\nreplaces_priority = 5\nfuture_key = kept\n"
    )
    info = parse_pkginfo(text, "a.apk")
    assert info.depends == ("b", "c>=2")
    assert info.provides == ("cmd:a=1-r0", "so:liba.so.1=1")
    assert info.replaces == ("old-a", "older-a")
    assert info.install_if == ("x", "y=1")
    assert info.triggers == ("/usr/bin", "/usr/lib/*")
    assert info.pkgdesc == "has = inside"
    assert info.replaces_priority == 5
    assert info.extra == (("future_key", "kept"),)


def test_wrapped_license_line_is_ignored_like_apk_tools():
    # libblkid 2.36.1-r1 (Alpine 3.13) has a tab-indented second license line; the index keeps line one only.
    folder = apk_mirror() / "alpine/v3.13/main/aarch64"
    with tarfile.open(folder / "libblkid-2.36.1-r1.apk") as tar:
        text = tar.extractfile(".PKGINFO").read().decode()
    assert "\n\tLGPL" in text
    info = parse_pkginfo(text, "libblkid-2.36.1-r1.apk")
    assert info.license.endswith("GPL-2.0-only AND")


@pytest.mark.parametrize(
    "text, message",
    [
        ("pkgname = a\npkgver = 1\nthis line is wrong\n", r"\.PKGINFO line 3 is not 'key = value'"),
        ("pkgname = a\npkgver = 1\nsize=12\n", r"\.PKGINFO line 3 is not 'key = value'"),
        ("pkgname = a\npkgver = 1\nsize = twelve\n", r"\.PKGINFO line 3: size must be an integer"),
        ("pkgname = a\nbuilddate = 1\n", r"\.PKGINFO has no pkgver"),
        ("pkgver = 1\n", r"\.PKGINFO has no pkgname"),
    ],
)
def test_malformed_pkginfo(text, message):
    with pytest.raises(OciBuildError, match=r"^bad-1\.apk: " + message) as e:
        parse_pkginfo(text, "bad-1.apk")
    assert "\n" not in str(e.value)


def test_fixture_pkginfo_round_trip():
    apk = build_apk(
        "hello",
        "1.0-r0",
        arch="aarch64",
        depends=["musl", "so:libc.musl-aarch64.so.1"],
        provides=["cmd:hello=1.0-r0"],
        replaces=["hi"],
        install_if=["a", "b"],
        provider_priority=10,
    )
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(package_parts(apk)["control"]))) as t:
        info = parse_pkginfo(t.extractfile(".PKGINFO").read().decode(), "hello.apk")
    assert (info.pkgname, info.pkgver, info.arch, info.provider_priority) == (
        "hello",
        "1.0-r0",
        "aarch64",
        10,
    )
    assert info.depends == ("musl", "so:libc.musl-aarch64.so.1")
    assert (info.provides, info.replaces, info.install_if) == (("cmd:hello=1.0-r0",), ("hi",), ("a", "b"))
