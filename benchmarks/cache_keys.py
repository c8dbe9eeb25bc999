"""Which Process cache keys two machines share: `./pants package images/static` against a real BuildGrid.

A writer checkout fills the remote cache; then readers (SCENARIOS: another checkout path, another
HOME, a pinned bootstrap cache, another PATH), each a fresh copy of HEAD with an empty local store,
build the same targets with remote cache reads only. For each run this prints Pants'
`[stats]` counters and, from the engine's debug log (`remote cache hit/miss for: <description>
digest=<action digest>`), every Process description whose action digest differs from the writer's.

    ./pants run benchmarks/cache_keys.py -- [--workdir DIR] [--keep] [--scenarios other-path,...]

Slow (several cold Pants runs). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
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
from testutil.provision import cache_dir, ensure_test_deps
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
    downloads: List[str]  # URLs fetched by DownloadFile


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
    downloads = re.findall(r"Starting: Downloading: (\S+)", output)
    return Run(name, {c: counter(output, c) for c in COUNTERS}, dict(keys), dict(misses), spawned, downloads)


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


@dataclass(frozen=True)
class Scenario:
    """How a reader's machine differs from the writer's (each also has its own checkout path)."""

    why: str
    new_home: bool = False
    pin_bootstrap: bool = False  # PANTS_BOOTSTRAP_CACHE = the writer's bootstrap cache path
    extra_path: bool = False  # one more (empty) directory in front of PATH


SCENARIOS = {
    "other-path": Scenario("another checkout path, same user"),
    "other-home": Scenario("another HOME: own bootstrap venv, named caches, pex_root", new_home=True),
    "home-pinned": Scenario("another HOME, PANTS_BOOTSTRAP_CACHE pinned", new_home=True, pin_bootstrap=True),
    "other-PATH": Scenario("same user, one more directory on PATH", extra_path=True),
}


def build(workdir: Path, name: str, options: Sequence[str], scenario: Optional[Scenario] = None) -> Run:
    parent = workdir / name / "deeper" if scenario else workdir / name
    checkout = make_checkout(workdir, parent)
    extra_env: Dict[str, str] = {}
    if scenario and scenario.new_home:
        home = workdir / f"home-{name}"
        home.mkdir(parents=True, exist_ok=True)
        # A new user: bootstrap venv, named caches (pex_root) and Pants' own caches all under it.
        extra_env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
    if scenario and scenario.pin_bootstrap:
        extra_env["PANTS_BOOTSTRAP_CACHE"] = str(cache_dir())
    if scenario and scenario.extra_path:
        extra = workdir / "extra-bin"
        extra.mkdir(exist_ok=True)
        extra_env["PATH"] = f"{extra}{os.pathsep}{os.environ['PATH']}"
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
        spawned = sorted(reader.spawned)
        print(f"  Processes started locally ({len(spawned)}; a remote hit also starts one unless the")
        print("  Process sets remote_cache_speculation_delay_millis, and kills it when the hit arrives):")
        for d in spawned:
            print(f"    - {d}{'  (remote hit)' if d in reader.keys and d not in reader.misses else ''}")
        print(f"  files downloaded by DownloadFile: {len(reader.downloads)}")
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
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help="readers to run, comma-separated: "
        + "; ".join(f"{name} ({sc.why})" for name, sc in SCENARIOS.items()),
    )
    parser.add_argument("--report-only", action="store_true", help="only re-read the logs in --workdir")
    parser.add_argument(
        "--pants-option",
        action="append",
        default=[],
        help="an extra Pants option for every run, e.g. --pex-executable-search-paths=\"['/usr/bin','/bin']\"",
    )
    args = parser.parse_args(argv)
    if args.report_only:
        logs = {p.stem: p.read_text() for p in sorted(args.workdir.glob("*.log"))}
        writer = parse("writer", logs.pop("writer"))
        report(writer, [parse(name, text) for name, text in logs.items()])
        return 0
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
                *args.pants_option,
            )
            writer = build(workdir, "writer", (*remote, "--remote-cache-write"))
            readers = [
                build(workdir, name, (*remote, "--no-remote-cache-write"), SCENARIOS[name])
                for name in args.scenarios.split(",")
            ]
        report(writer, readers)
        print(f"\nlogs: {workdir}/*.log")
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
