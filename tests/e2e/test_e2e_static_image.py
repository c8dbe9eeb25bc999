"""End to end: `./pants` in fresh checkouts locks, builds and caches the static image.

Each test runs the real bootstrap script and Pants (without pantsd) in copies of this repository
at different paths, as a new user or CI would; the remote-cache test uses pants.ci.toml with a real
BuildGrid, and builds the second time with the package mirror gone.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from testutil.checkout import counter, make_checkout, repo_root, run_pants
from testutil.remote_cache import (
    parse,
    served_by_cache_failures,
    tree_digests,
    tree_failures,
    writer_then_reader,
)

LOCKFILE = "images/static/apko.lock.json"
STATIC_TARGETS = ("images/static:static", "images/static:static-nonroot")


def ok(result) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def first_build(workspace: Path):
    checkout = make_checkout(workspace / "a")
    store = workspace / "store-a"
    output = ok(run_pants(checkout, "package", *STATIC_TARGETS, store=store))
    return checkout, store, output


def test_generate_lockfiles_reproduces_the_committed_lock(workspace: Path) -> None:
    checkout = make_checkout(workspace / "lock")
    (checkout / LOCKFILE).unlink()
    ok(run_pants(checkout, "generate-lockfiles", "--resolve=static", store=workspace / "store-lock"))
    assert (checkout / LOCKFILE).read_bytes() == (repo_root() / LOCKFILE).read_bytes()


def test_package_prints_the_digest_of_what_it_wrote(first_build) -> None:
    checkout, _, output = first_build
    layout = checkout / "dist/images.static/static/layout"
    index = json.loads((layout / "index.json").read_text())
    (manifest,) = index["manifests"]
    assert f"digest: {manifest['digest']}" in output
    blob = layout / "blobs/sha256" / manifest["digest"].split(":")[1]
    assert "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest() == manifest["digest"]


def test_two_checkouts_build_identical_images(workspace: Path, first_build) -> None:
    checkout_a, _, _ = first_build
    checkout_b = make_checkout(workspace / "b" / "deeper", name="other-name")
    ok(
        run_pants(
            checkout_b,
            "package",
            *STATIC_TARGETS,
            store=workspace / "store-b",
            extra_env={"TZ": "Pacific/Kiritimati", "LANG": "C"},
        )
    )
    for target in ("static", "static-nonroot"):
        a = tree_digests(checkout_a / "dist/images.static" / target)
        b = tree_digests(checkout_b / "dist/images.static" / target)
        assert a and a == b


def test_rebuild_runs_no_build_process(first_build) -> None:
    checkout, store, first_output = first_build
    assert "Build APK layer" in first_output and "Assemble OCI image" in first_output
    output = ok(run_pants(checkout, "package", *STATIC_TARGETS, store=store))
    # Local cache hits run nothing and so log no "Starting:" line for the build steps.
    assert "Build APK layer" not in output
    assert "Assemble OCI image" not in output
    # (interpreter probes are cached per Pants restart only, so some lookups stay uncached)
    assert counter(output, "local_cache_requests_cached") >= 4


def test_fresh_machine_is_served_by_the_remote_cache(workspace: Path) -> None:
    remote = workspace / "remote"
    remote.mkdir()
    with writer_then_reader(remote, ("-ldebug", "package", *STATIC_TARGETS)) as machines:
        first, stats = parse(ok(machines.written)), parse(ok(machines.read))
    packages = [p for p in machines.mirror_requests if p.endswith(".apk")]
    # The writer fetched each package once, each in its own cacheable Process.
    assert len(packages) == len(set(packages)) >= 5, machines.mirror_requests
    # The ocibuild PEX, every package fetch, the layer and both images: all from the cache; nothing
    # spawned here but Pants' uncacheable probes.
    assert first["remote_cache_requests_uncached"] >= 4 + len(packages), first
    assert served_by_cache_failures(first, stats) == []
    assert tree_failures(machines.writer / "dist/images.static", machines.reader / "dist/images.static") == []


def test_a_stale_or_tampered_lock_fails_the_build_clearly(workspace: Path) -> None:
    checkout = make_checkout(workspace / "stale")
    spec = checkout / "images/static/apko.yaml"
    spec.write_text(spec.read_text().replace("    - tzdata ", "    - tzdata>=2023c "))
    stale = run_pants(checkout, "package", "images/static:packages")
    assert stale.returncode != 0
    assert (
        f"{LOCKFILE} is stale: images/static/apko.yaml changed since it was locked; re-lock the resolve: "
        "run `pants generate-lockfiles --resolve=static`."
    ) in stale.stderr

    spec.write_text((repo_root() / "images/static/apko.yaml").read_text())
    lock = json.loads((checkout / LOCKFILE).read_text())
    tzdata = next(p for p in lock["contents"]["packages"] if p["name"] == "tzdata")
    tzdata["sha256"] = "0" * 64
    (checkout / LOCKFILE).write_text(json.dumps(lock, indent=2))
    tampered = run_pants(checkout, "package", "images/static:packages")
    assert tampered.returncode != 0
    assert f"could not download {tzdata['url']} (sha256 {'0' * 64}" in tampered.stderr
    assert not (checkout / "dist/images.static/packages").exists()
