"""Layers of genuine Alpine 3.19 x86_64 packages: contents, ownership, apk's database, descriptor."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import subprocess
import tarfile
import zlib
from pathlib import Path

import pytest
from ocibuild.errors import OciBuildError
from ocibuild.layer.accounts import parse_accounts
from ocibuild.layer.apk_layer import ApkLayerOptions, build_apk_layer
from testutil.apk_layers import (
    NONROOT,
    STATIC_SET,
    alpine_lock,
    alpine_packages_dir,
    layer_members,
    parse_installed,
)
from testutil.apkbuild import package_parts

WITH_BUSYBOX = STATIC_SET + ("busybox",)


@pytest.fixture
def busybox_layer(tmp_path):
    lock = alpine_lock(WITH_BUSYBOX)
    options = ApkLayerOptions(
        arch="x86_64", accounts=parse_accounts(NONROOT, "accounts.json"), skip_scripts_of=("busybox",)
    )
    out = tmp_path / "layer.tar.gz"
    descriptor = build_apk_layer(
        lock, str(alpine_packages_dir()), options, str(out), str(tmp_path / "layer.json")
    )
    return lock, descriptor, out, tmp_path / "layer.json"


def data_member_files(apk_path: Path):
    """The package's own data tar, read independently with tarfile: {name: member}."""
    data = package_parts(apk_path.read_bytes())["data"]
    assert data is not None, f"{apk_path.name} has no data member"
    with tarfile.open(fileobj=io.BytesIO(zlib.decompress(data, 31)), mode="r:") as tar:
        return {m.name: m for m in tar.getmembers()}


def test_static_set_files_modes_and_owners(busybox_layer):
    _, _, out, _ = busybox_layer
    members = layer_members(out)
    member = {name: m for name, (m, _) in members.items()}
    content = {name: c for name, (_, c) in members.items()}
    assert b"-----BEGIN CERTIFICATE-----" in content["etc/ssl/certs/ca-certificates.crt"]
    assert (
        member["etc/ssl/cert.pem"].issym()
        and member["etc/ssl/cert.pem"].linkname == "certs/ca-certificates.crt"
    )
    assert content["usr/share/zoneinfo/Europe/Paris"].startswith(b"TZif")
    assert any(m.islnk() for name, m in member.items() if name.startswith("usr/share/zoneinfo/"))
    assert content["etc/alpine-release"] == b"3.19.1\n"
    assert (member["etc/shadow"].mode, member["etc/shadow"].gid) == (0o640, 42)
    assert member["bin/busybox"].mode == 0o755 and member["bin/busybox"].size > 500_000
    assert "bin/sh" not in member  # made by busybox's post-install, which is not run
    assert member["tmp"].isdir() and member["tmp"].mode == 0o1777
    home = member["home/nonroot"]
    assert home.isdir() and (home.uid, home.gid, home.mode) == (65532, 65532, 0o755)
    passwd = content["etc/passwd"].decode().splitlines()
    assert passwd[0].startswith("root:x:0:0:")
    assert "nonroot:x:65532:65532:Account created by ocibuild:/home/nonroot:/bin/sh" in passwd
    assert "nonroot:x:65532:nonroot" in content["etc/group"].decode().splitlines()
    # nothing of the host: one mtime, numeric ids, no names, no PAX records
    assert {m.mtime for m in member.values()} == {max(1706291505, 1703367824, 1699383189)}
    assert all(m.uname == "" and m.gname == "" and not m.pax_headers for m in member.values())
    assert list(member) == sorted(member, key=lambda n: n.split("/"))


def test_every_package_file_is_in_the_layer_with_its_metadata(busybox_layer):
    lock, _, out, _ = busybox_layer
    member = {name: m for name, (m, _) in layer_members(out).items()}
    for pkg in lock.packages_for("x86_64"):
        for name, m in data_member_files(alpine_packages_dir() / pkg.filename).items():
            got = member[name]
            if name in ("etc/passwd", "etc/group", "tmp"):
                continue
            assert (got.type if not got.islnk() else tarfile.REGTYPE, got.mode, got.uid, got.gid) == (
                m.type if not m.islnk() else tarfile.REGTYPE,
                m.mode,
                m.uid,
                m.gid,
            ), name


def test_installed_db_lists_packages_with_correct_checksums(busybox_layer):
    lock, descriptor, out, _ = busybox_layer
    members = layer_members(out)
    blocks = parse_installed(members["lib/apk/db/installed"][1].decode())
    locked = {p.name: p for p in lock.packages_for("x86_64")}
    assert [dict(b)["P"] for b in blocks] == sorted(locked)  # sorted by name, as apk-tools writes it
    checked = 0
    for block in blocks:
        fields = dict(block)
        pkg = locked[fields["P"]]
        assert (fields["C"], fields["V"], fields["S"]) == (pkg.checksum, pkg.version, str(pkg.size))
        assert [k for k, _ in block[:9]] == list("CPVASITUL")
        directory, name = None, None
        for key, value in block:
            if key == "F":
                directory = value
            elif key == "R":
                name = f"{directory}/{value}" if directory else value
                assert name in members, name
            elif key == "Z":
                member, content = members[name]
                if member.issym():
                    payload = member.linkname.encode()
                elif member.islnk():
                    payload = members[member.linkname][1]
                else:
                    payload = content
                if name in ("etc/passwd", "etc/group"):
                    continue  # edited by accounts: the db keeps the package's checksum, as apk would
                assert value == "Q1" + base64.b64encode(hashlib.sha1(payload).digest()).decode(), name
                checked += 1
    assert checked > 1000  # tzdata alone has hundreds of files
    assert members["lib/apk/db/triggers"][1] == b""
    assert members["etc/apk/world"][1].decode().split() == sorted(locked)
    assert members["etc/apk/arch"][1] == b"x86_64\n"


def test_installed_db_block_of_busybox_matches_apk_format(busybox_layer):
    _, _, out, _ = busybox_layer
    text = layer_members(out)["lib/apk/db/installed"][1].decode()
    block = next(b for b in text.split("\n\n") if "\nP:busybox\n" in b)
    lines = block.splitlines()
    assert lines[1:4] == ["P:busybox", "V:1.36.1-r15", "A:x86_64"]
    assert "r:busybox-initscripts" in lines
    assert "p:cmd:busybox=1.36.1-r15" in lines
    assert "D:so:libc.musl-x86_64.so.1" in lines
    tmp = lines.index("F:tmp")
    assert lines[tmp + 1] == "M:0:0:1777"
    dad = lines.index("R:dad")
    assert lines[dad + 1] == "a:0:0:775"
    bin_dir = lines.index("F:bin")
    busybox = layer_members(out)["bin/busybox"][1]
    assert lines[bin_dir + 1 : bin_dir + 4] == [
        "R:busybox",
        "a:0:0:755",
        "Z:Q1" + base64.b64encode(hashlib.sha1(busybox).digest()).decode(),
    ]


def test_noarch_packages_get_the_repository_arch_as_apk_records_it(busybox_layer):
    _, _, out, _ = busybox_layer
    text = layer_members(out)["lib/apk/db/installed"][1].decode()
    block = next(b for b in text.split("\n\n") if "\nP:alpine-baselayout-data\n" in b)
    assert "\nA:x86_64\n" in block  # .PKGINFO says noarch; the index (and so apk) says x86_64


def test_descriptor(busybox_layer):
    lock, descriptor, out, json_path = busybox_layer
    data = out.read_bytes()
    doc = json.loads(json_path.read_text())
    assert doc["architecture"] == "x86_64"
    assert doc["media_type"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert doc["digest"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert doc["diff_id"] == "sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest()
    assert doc["size"] == len(data)
    assert {(p["name"], p["version"]) for p in doc["packages"]} == {
        (p.name, p.version) for p in lock.packages_for("x86_64")
    }
    assert json_path.read_text() == json.dumps(doc, sort_keys=True, indent=2) + "\n"


def test_standard_tools_accept_the_layer(busybox_layer, tmp_path):
    _, _, out, _ = busybox_layer
    subprocess.run(["gzip", "-t", str(out)], check=True)
    listing = subprocess.run(["tar", "-tzf", str(out)], check=True, capture_output=True, text=True).stdout
    assert "etc/ssl/certs/ca-certificates.crt" in listing.splitlines()
    dest = tmp_path / "extracted"
    dest.mkdir()
    subprocess.run(["tar", "-xzf", str(out), "-C", str(dest), "--numeric-owner"], check=True)
    assert (dest / "etc/alpine-release").read_text() == "3.19.1\n"


def test_busybox_scripts_must_be_acknowledged(tmp_path):
    lock = alpine_lock(WITH_BUSYBOX)
    with pytest.raises(OciBuildError) as e:
        build_apk_layer(
            lock, str(alpine_packages_dir()), ApkLayerOptions(arch="x86_64"), str(tmp_path / "l.tar.gz")
        )
    assert str(e.value).startswith(
        "package busybox has install scripts (.post-install, .post-upgrade, .trigger)"
    )
    assert "--skip-scripts-of busybox" in str(e.value)
    assert not (tmp_path / "l.tar.gz").exists()


def test_mtime_is_source_date_epoch_when_given(tmp_path):
    lock = alpine_lock(STATIC_SET)
    out = tmp_path / "l.tar.gz"
    build_apk_layer(
        lock, str(alpine_packages_dir()), ApkLayerOptions(arch="x86_64", source_date_epoch=0), str(out)
    )
    assert {m.mtime for m, _ in layer_members(out).values()} == {0}
