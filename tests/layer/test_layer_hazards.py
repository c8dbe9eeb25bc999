"""Every hazard the layer builder refuses (or accepts on purpose), with fixture packages."""

from __future__ import annotations

import tarfile

import pytest
from ocibuild.errors import OciBuildError
from ocibuild.layer.apk_contents import read_data_tar
from ocibuild.layer.apk_layer import ApkLayerOptions, build_apk_layer
from testutil import apkbuild
from testutil.apk_layers import build_fixture_layer, layer_members, lock_fixtures, parse_installed
from testutil.apkbuild import build_apk, directory, hardlink, reg_file, symlink


def refused(tmp_path, apks, message, **options):
    with pytest.raises(OciBuildError) as e:
        build_fixture_layer(tmp_path, apks, **options)
    text = str(e.value)
    assert "\n" not in text
    assert message in text, text
    assert not (tmp_path / "out" / "layer.tar.gz").exists() and not (tmp_path / "out" / "layer.json").exists()
    return text


def test_absolute_path(tmp_path):
    apk = build_apk("abs", "1-r0", files=[reg_file("etc/x", b"x", pax=(("path", "/etc/passwd"),))])
    refused(tmp_path, [apk], "package abs: absolute path '/etc/passwd' is not allowed")


def test_dotdot_component(tmp_path):
    apk = build_apk(
        "dots", "1-r0", files=[directory("etc"), reg_file("etc/../../x", b"x")], add_parent_dirs=False
    )
    refused(tmp_path, [apk], "package dots: path 'etc/../../x' contains a '..' component")


def test_symlink_escaping_the_root_is_not_written_through(tmp_path):
    files = [directory("var"), symlink("var/evil", "../../../../etc"), reg_file("var/evil/cron", b"x")]
    apk = build_apk("escape", "1-r0", files=files, add_parent_dirs=False)
    refused(
        tmp_path,
        [apk],
        "package escape: var/evil/cron would be written through the symlink /var/evil -> "
        "../../../../etc (leading outside the image root)",
    )


def test_symlink_dir_of_another_package_is_not_written_through(tmp_path):
    # real packages carry a directory entry before their files: the directory meets the symlink first
    links = build_apk("links", "1-r0", files=[symlink("lib64", "lib")])
    writer = build_apk("writer", "1-r0", files=[reg_file("lib64/libx.so", b"\x7fELF")], depends=["links"])
    refused(
        tmp_path,
        [links, writer],
        "package writer: lib64 would be written through the symlink /lib64 -> lib"
        " (leading elsewhere in the image)",
    )


@pytest.mark.parametrize("kind, typeflag", [("char device", tarfile.CHRTYPE), ("fifo", tarfile.FIFOTYPE)])
def test_device_nodes_and_fifos(tmp_path, monkeypatch, kind, typeflag):
    real = apkbuild._tarinfo

    def special(e, mtime):  # apkbuild has no device entries: turn dev/node into one
        info, data = real(e, mtime)
        if info.name == "dev/node":
            info.type, info.size, info.devmajor, info.devminor = typeflag, 0, 1, 3
            info.pax_headers.pop("APK-TOOLS.checksum.SHA1", None)
            data = None
        return info, data

    monkeypatch.setattr(apkbuild, "_tarinfo", special)
    apk = build_apk("dev", "1-r0", files=[reg_file("dev/node", b"")])
    refused(tmp_path, [apk], "package dev: dev/node is a device node or fifo")


def test_setuid_needs_allow_setuid(tmp_path):
    apk = build_apk("suid", "1-r0", files=[reg_file("bin/su", b"#!", mode=0o4755)])
    refused(tmp_path, [apk], "package suid: bin/su is setuid/setgid (mode 4755)")
    _, layer = build_fixture_layer(tmp_path, [apk], allow_setuid=True)
    assert layer_members(layer)["bin/su"][0].mode == 0o4755


def test_setgid_file_too(tmp_path):
    apk = build_apk("sgid", "1-r0", files=[reg_file("bin/wall", b"#!", mode=0o2755)])
    refused(tmp_path, [apk], "package sgid: bin/wall is setuid/setgid (mode 2755)")


def test_conflicting_files_need_replaces(tmp_path):
    a = build_apk("a", "1-r0", files=[reg_file("etc/motd", b"from a")])
    b = build_apk("b", "1-r0", files=[reg_file("etc/motd", b"from b")], depends=["a"])
    refused(tmp_path, [a, b], "package b: etc/motd differs from the one of a and neither package declares")


@pytest.mark.parametrize("replacer_first", [False, True])
def test_replaces_lets_the_replacing_package_win(tmp_path, replacer_first):
    old = build_apk("old", "1-r0", files=[reg_file("etc/motd", b"old"), reg_file("etc/only-old", b"o")])
    new = build_apk(
        "new",
        "2-r0",
        files=[reg_file("etc/motd", b"new")],
        replaces=["old"],
        depends=[] if replacer_first else ["old"],
    )
    if replacer_first:
        old = build_apk(
            "old",
            "1-r0",
            files=[reg_file("etc/motd", b"old"), reg_file("etc/only-old", b"o")],
            depends=["new"],
        )
    _, layer = build_fixture_layer(tmp_path, [old, new])
    members = layer_members(layer)
    assert members["etc/motd"][1] == b"new"
    blocks = {dict(b)["P"]: b for b in parse_installed(members["lib/apk/db/installed"][1].decode())}
    assert ("R", "motd") in blocks["new"] and ("R", "motd") not in blocks["old"]
    assert ("R", "only-old") in blocks["old"]


def test_identical_files_are_fine(tmp_path):
    a = build_apk("a", "1-r0", files=[reg_file("etc/same", b"same"), symlink("etc/l", "same")])
    b = build_apk("b", "1-r0", files=[reg_file("etc/same", b"same"), symlink("etc/l", "same")], depends=["a"])
    _, layer = build_fixture_layer(tmp_path, [a, b])
    assert layer_members(layer)["etc/same"][1] == b"same"


def test_install_scripts_refused_unless_skipped(tmp_path):
    apk = build_apk(
        "scripted",
        "1-r0",
        files=[reg_file("etc/x", b"x")],
        scripts={".pre-install": b"#!/bin/sh\nadduser x\n", ".trigger": b"#!/bin/sh\n"},
    )
    refused(tmp_path, [apk], "package scripted has install scripts (.pre-install, .trigger)")
    _, layer = build_fixture_layer(tmp_path, [apk], skip_scripts_of=("scripted",))
    assert layer_members(layer)["etc/x"][1] == b"x"


def test_skip_scripts_of_an_unknown_package(tmp_path):
    apk = build_apk("plain", "1-r0", files=[reg_file("etc/x", b"x")])
    refused(tmp_path, [apk], "skip_scripts_of names typo", skip_scripts_of=("typo",))


def test_extended_attributes(tmp_path):
    apk = build_apk(
        "caps", "1-r0", files=[reg_file("bin/ping", b"x", pax=(("SCHILY.xattr.security.capability", "c"),))]
    )
    refused(tmp_path, [apk], "package caps: bin/ping has extended attributes")


def test_checksum_record_must_match_content(tmp_path):
    apk = build_apk(
        "liar", "1-r0", files=[reg_file("etc/x", b"x", pax=(("APK-TOOLS.checksum.SHA1", "00" * 20),))]
    )
    refused(tmp_path, [apk], "package liar: etc/x: content does not match its APK-TOOLS.checksum.SHA1 record")


def test_hard_link_to_a_missing_file(tmp_path):
    apk = build_apk("hl", "1-r0", files=[hardlink("etc/b", "etc/nothere")])
    refused(tmp_path, [apk], "package hl: etc/b is a hard link to etc/nothere, which is not an earlier file")


def test_hard_links_survive(tmp_path):
    apk = build_apk("hl", "1-r0", files=[reg_file("z/Etc/UTC", b"TZif"), hardlink("z/UTC", "z/Etc/UTC")])
    _, layer = build_fixture_layer(tmp_path, [apk])
    members = layer_members(layer)
    assert members["z/Etc/UTC"][1] == b"TZif" and members["z/UTC"][0].islnk()


def test_package_may_not_ship_the_apk_database(tmp_path):
    apk = build_apk("db", "1-r0", files=[reg_file("lib/apk/db/installed", b"C:Q1fake\n")])
    refused(tmp_path, [apk], "package db: ships /lib/apk/db/installed, which the layer builder writes itself")


def test_tmp_must_be_a_directory(tmp_path):
    apk = build_apk("tmpfile", "1-r0", files=[reg_file("tmp", b"not a dir")])
    refused(tmp_path, [apk], "/tmp is a file (tmpfile)")


def test_tmp_is_created_or_fixed(tmp_path):
    apk = build_apk("tmp755", "1-r0", files=[directory("tmp", mode=0o755)])
    _, layer = build_fixture_layer(tmp_path, [apk])
    assert layer_members(layer)["tmp"][0].mode == 0o1777


def test_tampered_package_file_is_refused(tmp_path):
    apk = build_apk("good", "1-r0", files=[reg_file("etc/x", b"x")])
    lock, packages_dir = lock_fixtures(tmp_path, [apk])
    evil = build_apk("good", "1-r0", files=[reg_file("etc/x", b"evil")])
    (packages_dir / "good-1-r0.apk").write_bytes(evil)
    with pytest.raises(OciBuildError) as e:
        build_apk_layer(lock, str(packages_dir), ApkLayerOptions(arch="x86_64"), str(tmp_path / "l.tar.gz"))
    assert "good-1-r0.apk" in str(e.value)
    assert not (tmp_path / "l.tar.gz").exists()


def test_missing_package_file(tmp_path):
    apk = build_apk("gone", "1-r0", files=[reg_file("etc/x", b"x")])
    lock, packages_dir = lock_fixtures(tmp_path, [apk])
    (packages_dir / "gone-1-r0.apk").unlink()
    with pytest.raises(
        OciBuildError, match=r"package gone: .*gone-1-r0.apk is missing; it must be fetched from https://"
    ):
        build_apk_layer(lock, str(packages_dir), ApkLayerOptions(arch="x86_64"), str(tmp_path / "l.tar.gz"))


@pytest.mark.parametrize("name", ["/", "\0" * 8])  # a directory named "/", a name of NULs
def test_an_entry_with_an_empty_path_fails_with_one_line(name):
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    raw = info.tobuf(tarfile.USTAR_FORMAT) + bytes(1024)
    with pytest.raises(OciBuildError, match="package pkg: empty path"):
        read_data_tar(raw, "pkg")
