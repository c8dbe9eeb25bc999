from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
from ocibuild.apk.fetch import Fetcher, Mirrors, file_url
from ocibuild.apk.locker import describe_changes, lock
from ocibuild.apk.lockfile import dump_lockfile, load_lockfile
from ocibuild.apk.spec import load_spec
from ocibuild.cli import apk_lock
from ocibuild.errors import OciBuildError
from testutil.apk_oracle import expected_install_order, read_apkindex
from testutil.apkbuild import OTHER_KEY, TEST_KEY, build_apk, split_members, write_keys, write_repository
from testutil.paths import apk_mirror

UPSTREAM = "https://dl-cdn.alpinelinux.org/alpine/"
KEY_URL = "https://alpinelinux.org/keys/alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub"
STATIC = ["alpine-baselayout-data", "ca-certificates-bundle", "tzdata", "alpine-release"]
HELLO = b"#!/bin/sh\necho hi\n"
MIRROR_DIR = apk_mirror() / "alpine" / "v3.19" / "main" / "x86_64"


def _static_spec(packages: List[str] = STATIC) -> str:
    return (
        "contents:\n"
        f"  repositories: [{UPSTREAM}v3.19/main]\n"
        f"  keyring: [{KEY_URL}]\n"
        f"  packages: [{', '.join(packages)}]\n"
        "archs: [x86_64]\n"
    )


def _mirror_flags(mirror_root: Path) -> List[str]:
    return [
        f"--mirror={UPSTREAM}={file_url(str(mirror_root / 'alpine'))}",
        f"--mirror=https://alpinelinux.org/keys/={file_url(str(mirror_root / 'keys'))}",
    ]


def _lock_static(tmp_path: Path, mirror_root: Path = apk_mirror(), packages: List[str] = STATIC) -> bytes:
    spec = tmp_path / "apko.yaml"
    spec.write_text(_static_spec(packages))
    out = tmp_path / "apko.lock.json"
    assert (
        apk_lock.main(
            [
                "--spec",
                str(spec),
                "--name",
                "images/static/apko.yaml",
                "--output",
                str(out),
                *_mirror_flags(mirror_root),
            ]
        )
        == 0
    )
    return out.read_bytes()


def test_lock_real_mirror_static_set(tmp_path: Path) -> None:
    text = _lock_static(tmp_path).decode()
    lock_ = load_lockfile(text, "apko.lock.json")
    spec_bytes = (tmp_path / "apko.yaml").read_bytes()
    assert lock_.spec_name == "images/static/apko.yaml"
    # apko's encoding: base64, not hex
    assert lock_.spec_checksum == "sha256-" + base64.b64encode(hashlib.sha256(spec_bytes).digest()).decode()
    assert lock_.matches_spec(spec_bytes) and not lock_.matches_spec(spec_bytes + b"\n")

    expected = expected_install_order(MIRROR_DIR / "APKINDEX.tar.gz", STATIC)
    packages = lock_.packages_for("x86_64")
    assert [p.name for p in packages] == expected
    raw_index = read_apkindex(MIRROR_DIR / "APKINDEX.tar.gz")
    for p in packages:
        data = (MIRROR_DIR / p.filename).read_bytes()
        assert p.version == raw_index[p.name]["V"][0]
        assert p.url == f"{UPSTREAM}v3.19/main/x86_64/{p.name}-{p.version}.apk"  # upstream, not the mirror
        assert p.sha256 == hashlib.sha256(data).hexdigest() and p.size == len(data) == int(
            raw_index[p.name]["S"][0]
        )
        assert p.checksum == raw_index[p.name]["C"][0]
        sig, control, payload = split_members(data)
        assert (p.signature.start, p.signature.end) == (0, len(sig))
        assert (p.control.start, p.control.end) == (len(sig), len(sig) + len(control))
        assert p.data.end == len(data)
        assert p.control.checksum == "sha1-" + base64.b64encode(hashlib.sha1(control).digest()).decode()
        assert p.checksum == "Q1" + p.control.checksum[len("sha1-") :]
        assert p.signature.checksum == "sha1-" + base64.b64encode(hashlib.sha1(sig).digest()).decode()
        assert p.data.checksum == "sha256-" + base64.b64encode(hashlib.sha256(payload).digest()).decode()
        assert p.dependencies == tuple(raw_index[p.name].get("D", []))
        assert p.provides == tuple(raw_index[p.name].get("p", []))  # the index's p: field
    assert dict((p.name, p.replaces) for p in packages)["alpine-baselayout-data"] == ("alpine-baselayout",)
    provides = {p.name: p.provides for p in packages}
    assert provides["ca-certificates-bundle"] == ("ca-certificates-cacert=20230506-r0",)
    assert provides["tzdata"] == ()

    (key,) = lock_.keys
    assert key.url == KEY_URL
    assert key.pem == (apk_mirror() / "keys" / key.name).read_bytes()
    (repo,) = lock_.repositories
    assert repo.url == f"{UPSTREAM}v3.19/main/x86_64/APKINDEX.tar.gz"
    assert repo.name == "dl-cdn.alpinelinux.org/alpine/v3.19/main/x86_64"


def test_lock_is_byte_identical_across_runs_and_mirror_paths(tmp_path: Path) -> None:
    for sub in ("a", "b", "c"):
        (tmp_path / sub).mkdir()
    first = _lock_static(tmp_path / "a")
    assert _lock_static(tmp_path / "b") == first
    link = tmp_path / "elsewhere"
    link.symlink_to(apk_mirror())
    assert _lock_static(tmp_path / "c", mirror_root=link) == first


def test_so_and_cmd_dependencies_locked(tmp_path: Path) -> None:
    text = _lock_static(tmp_path, packages=["busybox", "openssl", "apk-tools"]).decode()
    names = [p.name for p in load_lockfile(text, "x").packages]
    # ssl_client joins through its install_if "busybox=1.36.1-r15 libssl3", which the oracle does not model
    assert names == expected_install_order(
        MIRROR_DIR / "APKINDEX.tar.gz", ["busybox", "openssl", "apk-tools", "ssl_client"]
    )
    assert names.index("ssl_client") > max(names.index("busybox"), names.index("libssl3"))
    assert {"musl", "libcrypto3", "libssl3", "zlib"} <= set(names)


def test_describe_changes(tmp_path: Path) -> None:
    new = load_lockfile(_lock_static(tmp_path).decode(), "x")
    by_name = {p.name: p for p in new.packages}
    old = dataclasses.replace(
        new,
        packages=tuple(
            [
                dataclasses.replace(by_name["tzdata"], version="2023c-r0"),
                dataclasses.replace(by_name["alpine-keys"], sha256="0" * 64),
                dataclasses.replace(by_name["alpine-release"], version="3.19.2-r0"),
                dataclasses.replace(by_name["tzdata"], name="gone"),
            ]
            + [p for p in new.packages if p.name not in ("tzdata", "alpine-keys", "alpine-release")]
        ),
    )
    assert describe_changes(old, new) == [
        "rebuilt alpine-keys 2.4-r1 (x86_64): new package bytes",
        "downgraded alpine-release (x86_64): 3.19.2-r0 -> 3.19.1-r0",
        "removed gone 2023d-r0 (x86_64)",
        "upgraded tzdata (x86_64): 2023c-r0 -> 2023d-r0",
    ]
    assert describe_changes(new, new) == []
    assert describe_changes(None, new)[0] == "added alpine-baselayout-data 3.4.3-r2 (x86_64)"


def test_cli_prints_changes_and_check(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _lock_static(tmp_path)
    assert "added tzdata 2023d-r0 (x86_64)" in capsys.readouterr().out
    _lock_static(tmp_path)
    assert "no package changes" in capsys.readouterr().out
    spec, out = tmp_path / "apko.yaml", tmp_path / "apko.lock.json"
    assert apk_lock.main(["--spec", str(spec), "--output", str(out), "--check"]) == 0
    spec.write_text(_static_spec(STATIC[:2]))
    assert apk_lock.main(["--spec", str(spec), "--output", str(out), "--check"]) == 1
    assert "stale" in capsys.readouterr().out
    assert apk_lock.main(["--spec", str(spec), "--output", str(tmp_path / "none.json"), "--check"]) == 1


# ---- bad input: one clear error, and the existing lockfile stays as it was ----------------------


@pytest.fixture
def fixture_repo(tmp_path: Path) -> Path:
    """A signed repository of test packages served through a file:// mirror of https://repo.test/."""
    apks = [
        build_apk("hello", "1.0-r0", files=[("usr/bin/hello", HELLO)], depends=["libgreet"]),
        build_apk("libgreet", "2.0-r0", arch="noarch", files=[("usr/share/greet/words", b"hi")]),
    ]
    write_repository(tmp_path / "mirror" / "main" / "x86_64", apks)
    project = tmp_path / "project"
    write_keys(project / "keys", TEST_KEY)
    (project / "apko.yaml").write_text(
        "contents:\n"
        "  repositories: [https://repo.test/main]\n"
        f"  keyring: [keys/{TEST_KEY.name}]\n"
        "  packages: [hello]\n"
        "archs: [x86_64]\n"
    )
    return tmp_path


def _run(root: Path) -> int:
    project = root / "project"
    return apk_lock.main(
        [
            "--spec",
            str(project / "apko.yaml"),
            "--output",
            str(project / "apko.lock.json"),
            f"--mirror=https://repo.test/={file_url(str(root / 'mirror'))}",
            "--retries=1",
        ]
    )


def test_fixture_repo_locks_with_local_key(fixture_repo: Path) -> None:
    assert _run(fixture_repo) == 0
    lock_ = load_lockfile((fixture_repo / "project" / "apko.lock.json").read_text(), "x")
    assert [p.name for p in lock_.packages_for("x86_64")] == ["libgreet", "hello"]  # noarch counts as x86_64
    assert lock_.keys[0].url == f"keys/{TEST_KEY.name}" and lock_.keys[0].pem == TEST_KEY.public_pem
    assert lock_.packages[1].url == "https://repo.test/main/x86_64/hello-1.0-r0.apk"


def _tamper_index(root: Path) -> None:
    path = root / "mirror" / "main" / "x86_64" / "APKINDEX.tar.gz"
    sig, control = split_members(path.read_bytes())
    # a valid gzip member with different contents: the signature no longer matches
    import gzip

    path.write_bytes(sig + gzip.compress(gzip.decompress(control).replace(b"libgreet", b"libgreez"), mtime=0))


def _index_by_other_key(root: Path) -> None:
    repo = root / "mirror" / "main" / "x86_64"
    apks = [p.read_bytes() for p in sorted(repo.glob("*.apk"))]
    write_repository(repo, apks, key=OTHER_KEY)


def _tamper_package(root: Path) -> None:
    """Swap in another data member; the index is rebuilt so that size and Q1 still match (as if the
    index signer had been fooled): only the signed control's datahash can catch it."""
    repo = root / "mirror" / "main" / "x86_64"
    path = repo / "hello-1.0-r0.apk"
    sig, control, _ = split_members(path.read_bytes())
    other = build_apk(
        "hello", "1.0-r0", files=[("usr/bin/hello", HELLO.replace(b"hi", b"pwned"))], depends=["libgreet"]
    )
    path.write_bytes(sig + control + split_members(other)[2])
    write_repository(repo, [p.read_bytes() for p in sorted(repo.glob("*.apk"))])


def _truncate_package(root: Path) -> None:
    path = root / "mirror" / "main" / "x86_64" / "libgreet-2.0-r0.apk"
    path.write_bytes(path.read_bytes()[:-100])


@pytest.mark.parametrize(
    "break_it, fragments",
    [
        (
            lambda root: (root / "project" / "apko.yaml").write_text("contents: [\n"),
            ["apko.yaml: malformed YAML at line 2"],
        ),
        (
            lambda root: (root / "project" / "apko.yaml").write_text(
                (root / "project" / "apko.yaml").read_text() + "accounts: {}\n"
            ),
            ["apko.yaml: has unknown key(s) accounts"],
        ),
        (_tamper_index, ["APKINDEX.tar.gz"]),
        (_index_by_other_key, ["APKINDEX.tar.gz", OTHER_KEY.name]),
        (_tamper_package, ["hello-1.0-r0.apk", "datahash"]),
        (
            _truncate_package,
            ["cannot fetch https://repo.test/main/x86_64/libgreet-2.0-r0.apk", "but expected"],
        ),
        (
            lambda root: (root / "project" / "keys" / TEST_KEY.name).unlink(),
            [f"keyring entry keys/{TEST_KEY.name}"],
        ),
        (
            lambda root: (root / "project" / "keys" / TEST_KEY.name).write_bytes(
                "# cl\u00e9 de test\n".encode() + (root / "project" / "keys" / TEST_KEY.name).read_bytes()
            ),
            [f"keyring entry keys/{TEST_KEY.name}: the PEM key holds non-ASCII bytes"],
        ),
    ],
    ids=[
        "malformed-yaml",
        "unknown-key",
        "tampered-index",
        "unknown-signer",
        "tampered-package",
        "truncated-download",
        "missing-key",
        "non-ascii-key",
    ],
)
def test_errors_leave_the_lockfile_untouched(fixture_repo: Path, break_it, fragments: List[str]) -> None:
    assert _run(fixture_repo) == 0
    lock_path = fixture_repo / "project" / "apko.lock.json"
    before = lock_path.read_bytes()
    break_it(fixture_repo)
    with pytest.raises(OciBuildError) as e:
        _run(fixture_repo)
    msg = str(e.value)
    assert "\n" not in msg
    for fragment in fragments:
        assert fragment in msg
    assert lock_path.read_bytes() == before
    assert sorted(os.listdir(lock_path.parent)) == [
        "apko.lock.json",
        "apko.yaml",
        "keys",
    ]  # no temp file left


def test_error_through_python_m_is_one_line_and_exit_1(fixture_repo: Path) -> None:
    (fixture_repo / "project" / "apko.yaml").write_text("contents: {packages: [hello]}\nfoo: 1\n")
    # Absolute: the child runs in another folder, and Pants' sandbox puts relative source roots on sys.path.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(os.path.abspath(p) for p in sys.path))
    result = subprocess.run(
        [sys.executable, "-m", "ocibuild", "apk-lock", "--spec", "apko.yaml", "--output", "apko.lock.json"],
        cwd=fixture_repo / "project",
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr == "error: apko.yaml: has unknown key(s) foo; allowed: archs, contents\n"
    assert not (fixture_repo / "project" / "apko.lock.json").exists()


def test_api_lock_matches_cli(fixture_repo: Path) -> None:
    assert _run(fixture_repo) == 0
    project = fixture_repo / "project"
    spec_bytes = (project / "apko.yaml").read_bytes()
    fetcher = Fetcher(Mirrors({"https://repo.test/": [file_url(str(fixture_repo / "mirror"))]}))
    result = lock(
        load_spec(spec_bytes.decode(), "apko.yaml"),
        spec_bytes,
        str(project / "apko.yaml"),
        fetcher,
        str(project),
    )
    assert dump_lockfile(result) == (project / "apko.lock.json").read_text()
