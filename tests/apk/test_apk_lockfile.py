from __future__ import annotations

import copy
import json

import pytest
from ocibuild.apk.lockfile import (
    LockedKey,
    LockedPackage,
    LockedRepository,
    LockedSection,
    Lockfile,
    dump_lockfile,
    load_lockfile,
)
from ocibuild.errors import OciBuildError
from testutil.apkbuild import TEST_KEY


def _pkg(name: str, arch: str, size: int = 3000) -> LockedPackage:
    return LockedPackage(
        name=name,
        version="1.0-r0",
        architecture=arch,
        url=f"https://dl-cdn.alpinelinux.org/alpine/v3.19/main/{arch}/{name}-1.0-r0.apk",
        checksum="Q1" + "A" * 27 + "=",
        signature=LockedSection(0, 600, "sha1-" + "B" * 27 + "="),
        control=LockedSection(600, 1100, "sha1-" + "C" * 27 + "="),
        data=LockedSection(1100, size, "sha256-" + "D" * 43 + "="),
        sha256="e" * 64,
        size=size,
        replaces=("old-" + name,),
        dependencies=("so:libc.musl-x86_64.so.1", "!conflicting"),
    )


LOCK = Lockfile(
    spec_name="images/static/apko.yaml",
    spec_checksum="sha256-" + "0" * 64,
    keys=(LockedKey(TEST_KEY.name, "keys/" + TEST_KEY.name, TEST_KEY.public_pem),),
    repositories=(
        LockedRepository(
            "dl-cdn.alpinelinux.org/alpine/v3.19/main/x86_64",
            "https://dl-cdn.alpinelinux.org/alpine/v3.19/main/x86_64/APKINDEX.tar.gz",
            "x86_64",
        ),
        LockedRepository(
            "dl-cdn.alpinelinux.org/alpine/v3.19/main/aarch64",
            "https://dl-cdn.alpinelinux.org/alpine/v3.19/main/aarch64/APKINDEX.tar.gz",
            "aarch64",
        ),
    ),
    packages=(_pkg("musl", "x86_64"), _pkg("busybox", "x86_64"), _pkg("musl", "aarch64")),
)


def test_round_trip_is_byte_identical() -> None:
    text = dump_lockfile(LOCK)
    assert text.endswith("}\n") and text.isascii()
    loaded = load_lockfile(text, "apko.lock.json")
    assert loaded == LOCK
    assert dump_lockfile(loaded) == text


def test_apko_v1_layout() -> None:
    doc = json.loads(dump_lockfile(LOCK))
    assert list(doc) == ["version", "config", "contents"]
    assert doc["version"] == "v1"
    assert doc["config"] == {"name": "images/static/apko.yaml", "checksum": "sha256-" + "0" * 64}
    assert list(doc["contents"]) == ["keyring", "build_repositories", "repositories", "packages"]
    assert doc["contents"]["keyring"][0]["data"] == TEST_KEY.public_pem.decode()
    pkg = doc["contents"]["packages"][0]
    assert list(pkg) == [
        "name",
        "url",
        "version",
        "architecture",
        "signature",
        "control",
        "data",
        "checksum",
        "sha256",
        "size",
        "replaces",
        "dependencies",
    ]
    # HTTP-style inclusive ranges, as apko writes them
    assert pkg["signature"]["range"] == "bytes=0-599"
    assert pkg["control"]["range"] == "bytes=600-1099"
    assert pkg["data"]["range"] == "bytes=1100-2999"


def test_packages_for_keeps_install_order_and_keyring_loads() -> None:
    assert [p.name for p in LOCK.packages_for("x86_64")] == ["musl", "busybox"]
    assert [p.name for p in LOCK.packages_for("aarch64")] == ["musl"]
    assert LOCK.packages_for("s390x") == []
    assert LOCK.archs == ["x86_64", "aarch64"]
    keyring = LOCK.keyring()
    assert keyring.names == (TEST_KEY.name,)
    assert keyring.pem(TEST_KEY.name) == TEST_KEY.public_pem


def _mutate(edit) -> str:
    doc = json.loads(dump_lockfile(LOCK))
    edit(doc)
    return json.dumps(doc)


def _pkg0(doc):
    return doc["contents"]["packages"][0]


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda d: d.update(version="v2"), "version: unsupported lockfile version 'v2'"),
        (lambda d: d.update(extra=1), "top level: unknown key 'extra'"),
        (lambda d: d["config"].pop("checksum"), "config: missing key 'checksum'"),
        (lambda d: d["config"].update(checksum="sha256-xyz"), "config.checksum: malformed value"),
        (
            lambda d: _pkg0(d).update(size="3000"),
            "contents.packages[0].size: expected a non-negative integer",
        ),
        (lambda d: _pkg0(d).update(sha256="E" * 64), "contents.packages[0].sha256: malformed value"),
        (lambda d: _pkg0(d).update(checksum="sha1-abc"), "contents.packages[0].checksum: malformed value"),
        (lambda d: _pkg0(d)["data"].update(range="bytes=1100"), "contents.packages[0].data.range: malformed"),
        (
            lambda d: _pkg0(d)["data"].update(checksum="md5-AAAA"),
            "contents.packages[0].data.checksum: malformed",
        ),
        (lambda d: _pkg0(d).update(size=2999), "ranges of musl do not tile its 2999 bytes"),
        (lambda d: _pkg0(d).pop("dependencies"), "contents.packages[0]: missing key 'dependencies'"),
        (lambda d: _pkg0(d).update(replaces="x"), "contents.packages[0].replaces: expected a list"),
        (
            lambda d: d["contents"]["keyring"][0].update(data="not a key"),
            "keyring[0].data: not a PEM public key",
        ),
        (
            lambda d: d["contents"]["keyring"][0].update(
                data="# cl\u00e9\n" + d["contents"]["keyring"][0]["data"]
            ),
            "keyring[0].data: the PEM key holds non-ASCII characters",
        ),
        (lambda d: d["contents"]["keyring"].append(d["contents"]["keyring"][0]), "a key name appears twice"),
        (lambda d: d["contents"]["packages"].append(copy.deepcopy(_pkg0(d))), "musl (x86_64) appears twice"),
        (
            lambda d: d["contents"]["packages"].insert(1, d["contents"]["packages"].pop(2)),
            "packages of x86_64 are not grouped together",
        ),
        (
            lambda d: d["contents"].update(build_repositories=[{"name": "x"}]),
            "build repositories are not supported",
        ),
    ],
)
def test_strict_validation(edit, fragment: str) -> None:
    with pytest.raises(OciBuildError) as e:
        load_lockfile(_mutate(edit), "images/static/apko.lock.json")
    msg = str(e.value)
    assert msg.startswith("images/static/apko.lock.json: ")
    assert fragment in msg
    assert "generate-lockfiles" in msg and "\n" not in msg


def test_not_json() -> None:
    with pytest.raises(OciBuildError, match=r"^lock.json: line 1: not valid JSON"):
        load_lockfile("{", "lock.json")
