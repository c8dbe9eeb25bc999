"""`python -m ocibuild apk-layer`: arguments, package subsets, errors."""

from __future__ import annotations

import json

from ocibuild.__main__ import main
from ocibuild.apk.lockfile import dump_lockfile
from testutil.apk_layers import STATIC_SET, alpine_lock, alpine_packages_dir, layer_members, parse_installed


def run(tmp_path, lock, *extra):
    lockfile = tmp_path / "lock.json"
    lockfile.write_text(dump_lockfile(lock))
    args = [
        "apk-layer",
        "--lockfile",
        str(lockfile),
        "--arch",
        "x86_64",
        "--packages-dir",
        str(alpine_packages_dir()),
        "--output-layer",
        str(tmp_path / "layer.tar.gz"),
        "--output-descriptor",
        str(tmp_path / "layer.json"),
        *extra,
    ]
    return main(args)


def installed_names(tmp_path):
    members = layer_members(tmp_path / "layer.tar.gz")
    return [dict(b)["P"] for b in parse_installed(members["lib/apk/db/installed"][1].decode())]


def test_subset_brings_its_dependencies_by_name(tmp_path, capsys):
    assert run(tmp_path, alpine_lock(STATIC_SET), "--package", "alpine-release") == 0
    assert installed_names(tmp_path) == [
        "alpine-keys",
        "alpine-release",
    ]  # alpine-release depends on alpine-keys
    members = layer_members(tmp_path / "layer.tar.gz")
    assert members["etc/apk/world"][1] == b"alpine-release\n"
    assert "usr/share/zoneinfo" not in members
    descriptor = json.loads((tmp_path / "layer.json").read_text())
    assert [p["name"] for p in descriptor["packages"]] == ["alpine-keys", "alpine-release"]
    assert descriptor["digest"] in capsys.readouterr().out


def test_subset_brings_dependencies_met_by_provides(tmp_path):
    lock = alpine_lock(STATIC_SET + ("busybox",))
    assert run(tmp_path, lock, "--package", "busybox", "--skip-scripts-of", "busybox") == 0
    assert installed_names(tmp_path) == ["busybox", "musl"]  # so:libc.musl-x86_64.so.1 is provided by musl


def test_unknown_package(tmp_path, capsys):
    assert run(tmp_path, alpine_lock(STATIC_SET), "--package", "nope") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: package nope is not in the lock for x86_64")
    assert not (tmp_path / "layer.tar.gz").exists()


def test_unknown_arch(tmp_path, capsys):
    assert run(tmp_path, alpine_lock(STATIC_SET), "--arch", "aarch64") == 1
    assert "the lock has no packages for aarch64" in capsys.readouterr().err


def test_unreadable_accounts_file(tmp_path, capsys):
    assert run(tmp_path, alpine_lock(STATIC_SET), "--accounts", str(tmp_path / "missing.json")) == 1
    assert "missing.json: cannot read the accounts file" in capsys.readouterr().err


def test_bad_accounts_file(tmp_path, capsys):
    accounts = tmp_path / "accounts.json"
    accounts.write_text('{"users": [{"username": "nonroot"}]}')
    assert run(tmp_path, alpine_lock(STATIC_SET), "--accounts", str(accounts)) == 1
    assert "accounts.json: `users[0].uid` is required" in capsys.readouterr().err


def test_lockfile_and_accounts_that_are_not_utf8(tmp_path, capsys):
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\xff\xfe{}")
    args = ["--packages-dir", str(tmp_path), "--output-layer", str(tmp_path / "l.tgz")]
    args += ["--output-descriptor", str(tmp_path / "l.json"), "--arch", "x86_64"]
    assert main(["apk-layer", "--lockfile", str(garbage), *args]) == 1
    assert (
        capsys.readouterr().err == f"error: {garbage}: the lockfile is not UTF-8 text; pass the right file\n"
    )
    assert run(tmp_path, alpine_lock(STATIC_SET), "--accounts", str(garbage)) == 1
    assert (
        capsys.readouterr().err
        == f"error: {garbage}: the accounts file is not UTF-8 text; pass the right file\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage.json", "lock.json"]


def test_output_that_cannot_be_created(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    lockfile = tmp_path / "lock.json"
    lockfile.write_text(dump_lockfile(alpine_lock(STATIC_SET)))
    args = ["apk-layer", "--lockfile", str(lockfile), "--arch", "x86_64"]
    args += ["--packages-dir", str(alpine_packages_dir()), "--output-descriptor", str(tmp_path / "l.json")]
    assert main([*args, "--output-layer", str(tmp_path / "afile" / "layer.tar.gz")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'afile' / 'layer.tar.gz'}: cannot create the output file (")
    assert err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "lock.json"]
