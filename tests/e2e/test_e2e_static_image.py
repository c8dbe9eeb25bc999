"""End to end: `./pants` in fresh checkouts locks, builds and caches the static image.

Each test runs the real bootstrap script and Pants (without pantsd) in copies of this repository
at different paths, as a new user or CI would; the remote-cache test uses pants.ci.toml with a real
BuildGrid, and builds the second time with the package mirror gone.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Dict

import pytest
from testutil.checkout import counter, make_checkout, repo_root, run_pants
from testutil.paths import shared_dir
from testutil.servers import buildgrid_cache, file_server

LOCKFILE = "images/static/apko.lock.json"
STATIC_TARGETS = ("images/static:static", "images/static:static-nonroot")
# The engine's debug line for each local run (process_execution/src/local.rs), with its description.
SPAWNED = re.compile(
    r'spawned local process as Some\(\d+\) for Process \{.*?description: "((?:[^"\\]|\\.)*)"'
)
REMOTE_COUNTERS = (
    "remote_cache_requests_cached",
    "remote_cache_requests_uncached",
    "remote_cache_read_errors",
    "remote_cache_request_timeouts",
    "remote_cache_speculation_local_completed_first",
    "remote_cache_speculation_remote_completed_first",
)


def ok(result) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output


def tree_digests(root: Path) -> Dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


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


def ci_env(cache, mirror_url: str) -> Dict[str, str]:
    """pants.ci.toml with this cache, and a mirror URL that is the same string on every machine."""
    mirrors = {
        "https://dl-cdn.alpinelinux.org/alpine/": [f"{mirror_url}alpine/"],
        "https://alpinelinux.org/keys/": [f"{mirror_url}keys/"],
    }
    return {
        "PANTS_CONFIG_FILES": "pants.ci.toml",
        "OCI_REMOTE_CACHE_ADDRESS": cache.address,
        "OCI_REMOTE_CACHE_INSTANCE": cache.instance,
        "PANTS_APK_MIRRORS": json.dumps(mirrors),
    }


def test_fresh_machine_is_served_by_the_remote_cache(workspace: Path) -> None:
    remote = workspace / "remote"
    remote.mkdir()
    with buildgrid_cache(remote) as cache:
        with file_server(shared_dir() / "apk-mirror") as mirror:
            env = ci_env(cache, mirror.url)
            writer = make_checkout(workspace / "writer")
            # The second machine's checkout: the same files at another path (copied now, so that
            # edits to this working tree meanwhile cannot make the two differ).
            reader = workspace / "reader" / "elsewhere" / "repo"
            shutil.copytree(writer, reader, symlinks=True)
            (reader.parent / "shared").symlink_to(shared_dir())
            written = ok(
                run_pants(writer, "package", *STATIC_TARGETS, store=workspace / "store-writer", extra_env=env)
            )
        packages = [p for p in mirror.requests if p.endswith(".apk")]
        # The mirror is gone: nothing listens at its URL. The second machine: another checkout path,
        # an empty local store, the same pants.ci.toml.
        output = ok(
            run_pants(
                reader, "-ldebug", "package", *STATIC_TARGETS, store=workspace / "store-reader", extra_env=env
            )
        )
    first = {name: counter(written, name) for name in (*REMOTE_COUNTERS, "local_execution_requests")}
    stats = {name: counter(output, name) for name in (*REMOTE_COUNTERS, "local_execution_requests")}
    # The writer fetched each package once, each in its own cacheable Process.
    assert len(packages) == len(set(packages)) >= 5, mirror.requests
    # The ocibuild PEX, every package fetch, the layer and both images: all from the cache.
    assert first["remote_cache_requests_uncached"] >= 4 + len(packages), first
    assert stats["remote_cache_requests_cached"] == first["remote_cache_requests_uncached"], (first, stats)
    assert stats["remote_cache_requests_uncached"] == 0, stats
    assert stats["remote_cache_speculation_local_completed_first"] == 0, stats
    # What ran here: the uncacheable interpreter probes the writer ran too, and at most a speculative
    # start of Pants' own PEX build (its Process has no speculation delay; the plugin's have one).
    spawned = SPAWNED.findall(output)
    assert len(spawned) == stats["local_execution_requests"], spawned
    ours = [d for d in spawned if d.startswith(("Fetch ", "Build APK layer", "Assemble OCI image"))]
    assert ours == [], spawned
    probes = first["local_execution_requests"] - first["remote_cache_requests_uncached"]
    assert probes <= stats["local_execution_requests"] <= probes + 1, (first, stats, spawned)
    assert tree_digests(writer / "dist/images.static") == tree_digests(reader / "dist/images.static")


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
