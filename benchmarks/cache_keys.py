"""Which Process cache keys two machines share: `./pants package images/static` against a real BuildGrid.

A writer checkout fills the remote cache; then readers, each a fresh checkout at another path with
an empty local store (and, for one, another HOME, so another bootstrap venv, named caches and
pex_root), build the same targets with remote cache reads only. For each run this prints Pants'
`[stats]` counters and, from the engine's debug log (`remote cache hit/miss for: <description>
digest=<action digest>`), every Process description whose action digest differs from the writer's.

    ./pants run benchmarks/cache_keys.py -- [--workdir DIR] [--keep]

Slow (several cold Pants runs). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set

from testutil.checkout import counter, run_pants
from testutil.paths import repo_root, shared_dir
from testutil.provision import ensure_test_deps
from testutil.servers import buildgrid_cache

TARGETS = ("images/static",)
COUNTERS = (
    "remote_cache_requests",
    "remote_cache_requests_cached",
    "remote_cache_requests_uncached",
    "remote_cache_read_errors",
    "remote_cache_speculation_local_completed_first",
    "remote_cache_write_attempts",
    "local_cache_requests_cached",
    "local_cache_requests_uncached",
    "local_execution_requests",
    "backtrack_attempts",
)
# remote_cache.rs logs both at debug level with the REAPI action digest (the cache key).
_LOOKUP = re.compile(
    r'remote cache (?P<kind>hit|miss) for: "(?P<desc>(?:[^"\\]|\\.)*)" '
    r"digest=Digest \{ hash: Fingerprint<(?P<hash>[0-9a-f]{64})>"
)


# The engine's debug line for each Process it runs locally: what goes into the key.
_SPAWNED = re.compile(
    r"spawned local process as Some\(\d+\) for Process \{ argv: (?P<argv>.*?), env: (?P<env>\{.*?\}), "
    r"working_directory.*?input_digests: InputDigests \{ complete: DirectoryDigest \{ digest: Digest "
    r'\{ hash: Fingerprint<(?P<input>\w+)>.*?description: "(?P<desc>(?:[^"\\]|\\.)*)", level'
)


@dataclass
class Run:
    name: str
    counters: Dict[str, int]
    keys: Dict[str, Set[str]]  # description -> action digests looked up
    misses: Dict[str, int]  # description -> lookups that missed
    spawned: Dict[str, Dict[str, str]]  # description -> argv, env, input digest of a local run


def _normalise(description: str) -> str:
    """Descriptions naming a sandbox or checkout path would never match: keep their stable part."""
    return re.sub(r"/tmp/\S+", "<tmp>", description)


def parse(name: str, output: str) -> Run:
    keys: Dict[str, Set[str]] = defaultdict(set)
    misses: Dict[str, int] = defaultdict(int)
    for m in _LOOKUP.finditer(output):
        desc = _normalise(m.group("desc").encode().decode("unicode_escape"))
        keys[desc].add(m.group("hash"))
        if m.group("kind") == "miss":
            misses[desc] += 1
    spawned = {
        _normalise(m.group("desc")): {f: m.group(f) for f in ("argv", "env", "input")}
        for m in _SPAWNED.finditer(output)
    }
    return Run(name, {c: counter(output, c) for c in COUNTERS}, dict(keys), dict(misses), spawned)


def snapshot(workdir: Path) -> Path:
    """The committed tree (HEAD), so that every checkout builds the same sources.

    (testutil.checkout copies the working tree, which may change between two checkouts.)"""
    ensure_test_deps()
    dest = workdir / "snapshot"
    if not dest.exists():
        dest.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "-C", str(repo_root()), "archive", "HEAD"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def make_checkout(workdir: Path, parent: Path) -> Path:
    dest = parent / "repo"
    if not dest.exists():
        shutil.copytree(snapshot(workdir), dest, symlinks=True)
    if not (parent / "shared").exists():
        (parent / "shared").symlink_to(shared_dir())
    return dest


def build(
    workdir: Path,
    name: str,
    options: Sequence[str],
    *,
    home: Optional[Path] = None,
    checkout_parent: Optional[Path] = None,
) -> Run:
    checkout = make_checkout(workdir, checkout_parent or workdir / name)
    extra_env = {}
    if home:
        home.mkdir(parents=True, exist_ok=True)
        # A new user: bootstrap venv, named caches (pex_root) and Pants' own caches all under it.
        extra_env = {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    result = run_pants(
        checkout,
        "-ldebug",
        *options,
        "package",
        *TARGETS,
        store=workdir / f"store-{name}",
        extra_env=extra_env,
        timeout=3600,
    )
    output = result.stdout + result.stderr
    (workdir / f"{name}.log").write_text(output)
    if result.returncode != 0:
        sys.exit(f"{name}: ./pants failed (exit {result.returncode}), see {workdir / f'{name}.log'}")
    return parse(name, output)


def report(writer: Run, readers: List[Run]) -> None:
    runs = [writer, *readers]
    width = max(len(c) for c in COUNTERS)
    print(f"{'counter':<{width}}  " + "  ".join(f"{r.name:>14}" for r in runs))
    for c in COUNTERS:
        print(f"{c:<{width}}  " + "  ".join(f"{r.counters[c]:>14}" for r in runs))
    for reader in readers:
        differing = sorted(d for d, k in reader.keys.items() if d in writer.keys and not (k & writer.keys[d]))
        only_here = sorted(d for d in reader.keys if d not in writer.keys)
        print(f"\n{reader.name}: {len(reader.keys)} distinct Process descriptions looked up")
        print(f"  same key as the writer: {len(reader.keys) - len(differing) - len(only_here)}")
        print(f"  another key than the writer's ({len(differing)}):")
        for d in differing:
            print(f"    - {d}")
            mine, theirs = reader.spawned.get(d), writer.spawned.get(d)
            if mine and theirs:
                for field in ("argv", "env", "input"):
                    if mine[field] != theirs[field]:
                        print(f"        {field} differs:\n          writer: {theirs[field][:600]}")
                        print(f"          {reader.name}: {mine[field][:600]}")
        if only_here:
            print(f"  not looked up by the writer ({len(only_here)}):")
            for d in only_here:
                print(f"    - {d}")
        missed = sorted(d for d, n in reader.misses.items() if n)
        print(f"  missed in the remote cache ({len(missed)}):")
        for d in missed:
            print(f"    - {d}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir", type=Path, help="where checkouts, stores and logs go (default: a temp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the workdir (logs) afterwards")
    parser.add_argument("--no-other-home", action="store_true", help="skip the reader with another HOME")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cache-keys-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        (workdir / "remote").mkdir(exist_ok=True)
        with buildgrid_cache(workdir / "remote") as cache:
            remote = (
                "--remote-cache-read",
                f"--remote-store-address={cache.address}",
                f"--remote-instance-name={cache.instance}",
                "--remote-cache-rpc-timeout-millis=30000",
            )
            writer = build(workdir, "writer", (*remote, "--remote-cache-write"))
            readers = [
                build(
                    workdir,
                    "other-path",
                    (*remote, "--no-remote-cache-write"),
                    checkout_parent=workdir / "other-path" / "deeper",
                )
            ]
            if not args.no_other_home:
                readers.append(
                    build(
                        workdir,
                        "other-home",
                        (*remote, "--no-remote-cache-write"),
                        home=workdir / "home-other",
                    )
                )
        report(writer, readers)
        print(f"\nlogs: {workdir}/*.log")
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
