"""A fresh machine served by a warm remote cache: the CI environment, and what Pants' logs say ran.

One place for the e2e test (tests/e2e/test_e2e_static_image.py), the CI job
(.ci/remote_cache_job.py) and the benchmark (benchmarks/build_bench.py):

- `ci_env`: pants.ci.toml with a cache and an `[apk].mirrors` URL that is the same string on every
  machine (a fetch's key holds it), so the second machine can find the mirror gone at that URL.
- `parse`: Pants' `[stats]` counters, and from the engine's `-ldebug` lines the Processes spawned
  locally (with their cache scope), the remote cache hits and misses, and the `DownloadFile`s.
- `served_by_cache_failures`: one line per way the second machine was not served by the cache.
- `writer_then_reader`: the two machines themselves, with a real BuildGrid and the mirror shut
  down between them.

Engine references: pantsbuild/pants tag release_2.17.1, src/rust/engine/.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from testutil.checkout import copy_checkout, counter, make_checkout, run_pants
from testutil.paths import apk_mirror
from testutil.servers import RemoteCache, buildgrid_cache, file_server

COUNTERS = (
    "local_execution_requests",
    "local_cache_requests_cached",
    "local_cache_requests_uncached",
    "remote_cache_requests_cached",
    "remote_cache_requests_uncached",
    "remote_cache_read_errors",
    "remote_cache_request_timeouts",
    "remote_cache_speculation_local_completed_first",
    "remote_cache_speculation_remote_completed_first",
    "remote_cache_write_attempts",
    "remote_store_missing_digest",
    "backtrack_attempts",
)

# Cache scopes whose Processes never enter any cache (process_execution/src/lib.rs,
# ProcessCacheScope; a random salt in their key, lib.rs:1152-1164): Pants' interpreter, bash and
# binary probes. The only Processes a fully cached build may still run.
UNCACHEABLE_SCOPES = frozenset({"PerRestartAlways", "PerRestartSuccessful", "PerSession"})

# process_execution/src/local.rs:371 `debug!("spawned local process as {:?} for {:?}", ...)`: the
# Process's derived Debug, one line, `description` before `cache_scope`.
_SPAWNED = re.compile(
    r'spawned local process as Some\(\d+\) for Process \{.*?description: "(?P<desc>(?:[^"\\]|\\.)*)"'
    r".*?cache_scope: (?P<scope>\w+)"
)
# process_execution/remote/src/remote_cache.rs:294-307, with the REAPI action digest.
_LOOKUP = re.compile(r'remote cache (?P<kind>hit|miss) for: "(?P<desc>(?:[^"\\]|\\.)*)" digest=')
# downloads.rs:211-220: every DownloadFile that is not already in the local store runs in a
# Debug-level workunit "Downloading: <url> (<size>)"; -ldebug logs its start as "Starting: ...".
_DOWNLOAD = re.compile(r"Starting: Downloading: (?P<url>\S+) \(")
# ./pants hands Pants the pex tool it built as a file:// URL ([pex-cli].url_template): a
# DownloadFile every fresh local store makes, of a local file.
PEX_TOOL_URL = re.compile(r"^file:///\S+/pex-[0-9.]+\.pex$")
# The descriptions of the plugin's build Processes (src/python/pants_oci): all carry a speculation
# delay (util_rules/ocibuild_process.py), so a cache hit never spawns them, not even for a moment.
PLUGIN_PROCESSES = ("Fetch ", "Build APK layer ", "Build file layer ", "Assemble OCI image ")


@dataclass(frozen=True)
class Spawn:
    description: str
    cache_scope: str

    @property
    def is_probe(self) -> bool:
        return self.cache_scope in UNCACHEABLE_SCOPES


@dataclass(frozen=True)
class BuildStats:
    counters: Dict[str, int]
    spawned: Tuple[Spawn, ...]  # every local process, from -ldebug
    hits: Tuple[str, ...]  # descriptions of remote cache hits
    misses: Tuple[str, ...]  # descriptions of remote cache misses
    downloads: Tuple[str, ...]  # URLs fetched by DownloadFile
    debug: bool  # the output had -ldebug lines: the four tuples above are complete

    def __getitem__(self, name: str) -> int:
        return self.counters[name]

    @property
    def probes(self) -> int:
        return sum(s.is_probe for s in self.spawned)


def _unescape(description: str) -> str:
    return description.encode().decode("unicode_escape")


def parse(output: str) -> BuildStats:
    """Counters from `--stats-log`; the rest needs the run's `-ldebug` output."""
    spawned: List[Spawn] = []
    hits: List[str] = []
    misses: List[str] = []
    for line in output.splitlines():
        if "spawned local process" in line:
            m = _SPAWNED.search(line)
            if m:
                spawned.append(Spawn(_unescape(m.group("desc")), m.group("scope")))
        elif "remote cache " in line:
            m = _LOOKUP.search(line)
            if m:
                (hits if m.group("kind") == "hit" else misses).append(_unescape(m.group("desc")))
    return BuildStats(
        counters={name: counter(output, name) for name in COUNTERS},
        spawned=tuple(spawned),
        hits=tuple(hits),
        misses=tuple(misses),
        downloads=tuple(m.group("url") for m in _DOWNLOAD.finditer(output)),
        debug=" [DEBUG] " in output,
    )


def ci_env(cache: RemoteCache, mirror_url: str) -> Dict[str, str]:
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


def _sample(items: Sequence[str], limit: int = 5) -> str:
    counts = Counter(items)
    shown = ", ".join(f"{d!r}" + (f" x{n}" if n > 1 else "") for d, n in sorted(counts.items())[:limit])
    return shown + (f", ... ({len(counts) - limit} more)" if len(counts) > limit else "")


def served_by_cache_failures(writer: BuildStats, reader: BuildStats) -> List[str]:
    """Why `reader` (a fresh machine after `writer` filled the cache) was not served by it; [] if it was.

    Both runs need `-ldebug`. Only Pants' uncacheable probes may be spawned: not even a speculative
    start of a cache hit (a Process started locally while its lookup is pending, then dropped;
    remote_cache.rs:320-341), which pants.ci.toml's remote_cache_speculation backend prevents.
    """
    failures = []
    if writer["remote_cache_requests_uncached"] == 0:
        failures.append(
            "the writer had no remote cache miss: it filled nothing (was the cache already warm?)"
        )
    if reader["remote_cache_requests_cached"] != writer["remote_cache_requests_uncached"]:
        missing = sorted((Counter(writer.misses) - Counter(reader.hits)).elements())
        failures.append(
            f"remote_cache_requests_cached {reader['remote_cache_requests_cached']} != the writer's "
            f"{writer['remote_cache_requests_uncached']} uncached Processes"
            + (f"; not hits here: {_sample(missing)}" if missing else "")
        )
    if reader["remote_cache_requests_uncached"]:
        failures.append(
            f"remote_cache_requests_uncached {reader['remote_cache_requests_uncached']}: {_sample(reader.misses)}"
        )
    for name in ("remote_cache_read_errors", "remote_cache_request_timeouts", "backtrack_attempts"):
        if reader[name]:
            failures.append(f"{name} {reader[name]}")
    if len(reader.spawned) != reader["local_execution_requests"]:
        failures.append(
            f"local_execution_requests {reader['local_execution_requests']} but {len(reader.spawned)} "
            "spawned-process lines: run with -ldebug (or the engine's log format changed)"
        )
    cacheable = [s.description for s in reader.spawned if not s.is_probe]
    ours = [d for d in cacheable if d.startswith(PLUGIN_PROCESSES)]
    if ours:
        failures.append(f"{len(ours)} of the plugin's Processes were spawned locally: {_sample(ours)}")
    hits = set(reader.hits)
    not_hits = [d for d in cacheable if d not in hits]
    if not_hits:
        failures.append(
            f"{len(not_hits)} Processes ran locally, not served by the cache: {_sample(not_hits)}"
        )
    speculative = [d for d in cacheable if d in hits]
    if speculative:
        failures.append(
            f"{len(speculative)} Processes spawned locally although the cache had them (speculative starts;"
            f" is pants.ci.toml's remote_cache_speculation backend loaded?): {_sample(speculative)}"
        )
    if reader["remote_cache_speculation_local_completed_first"]:
        failures.append(
            f"remote_cache_speculation_local_completed_first {reader['remote_cache_speculation_local_completed_first']}:"
            " local runs were used instead of cache hits"
        )
    if reader.probes > writer.probes:
        failures.append(f"{reader.probes} uncacheable probes ran, the writer ran {writer.probes}")
    downloads = [url for url in reader.downloads if not PEX_TOOL_URL.match(url)]
    if downloads:
        failures.append(f"{len(downloads)} DownloadFile: {_sample(downloads)}")
    return failures


def tree_digests(root: Path) -> Dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def tree_failures(writer_dist: Path, reader_dist: Path) -> List[str]:
    writer, reader = tree_digests(writer_dist), tree_digests(reader_dist)
    if not writer:
        return [f"{writer_dist} is empty"]
    differ = sorted(p for p in writer.keys() | reader.keys() if writer.get(p) != reader.get(p))
    return [f"dist/ differs between writer and reader: {_sample(differ)}"] if differ else []


def histogram_sum(output: str, name: str) -> Optional[int]:
    """The `sum:` of an observation histogram in `--stats-log` output, e.g.
    `remote_store_blob_bytes_downloaded` (needs `--plugins=hdrhistogram`; mean x count, so rounded
    to the histogram's precision; goal/stats_aggregator.py)."""
    m = re.search(rf"Summary of `{re.escape(name)}` observation histogram:\n(?:  .*\n)*?  sum: (\d+)", output)
    return int(m.group(1)) if m else None


def disk_bytes(root: Path) -> int:
    """Bytes allocated under `root` (the local store's lmdb files are sparse: not their size)."""
    return sum(p.lstat().st_blocks * 512 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def file_bytes(root: Path, paths: Sequence[str]) -> int:
    """The size of the files a file server at `root` was asked for (its `requests`)."""
    return sum((root / p.lstrip("/")).stat().st_size for p in paths if (root / p.lstrip("/")).is_file())


def stats_table(runs: Dict[str, BuildStats], extra: Optional[Dict[str, Dict[str, str]]] = None) -> str:
    """Processes local vs cached, downloads, and `extra` rows (e.g. wall time, bytes), one column per
    run ("-": needs -ldebug)."""
    rows: Dict[str, Dict[str, str]] = {}
    for name, s in runs.items():
        hits = set(s.hits)
        figures = {
            "cacheable Processes spawned locally": len(s.spawned) - s.probes,
            "  of them dropped for a cache hit": sum(
                not p.is_probe and p.description in hits for p in s.spawned
            ),
            "uncacheable probes run": s.probes,
            **{c: s[c] for c in COUNTERS},
            "DownloadFile (besides the pex tool)": sum(not PEX_TOOL_URL.match(u) for u in s.downloads),
        }
        for row, value in figures.items():
            rows.setdefault(row, {})[name] = f"{value:,}" if s.debug or row in COUNTERS else "-"
    for row, values in (extra or {}).items():
        rows.setdefault(row, {}).update(values)
    width = max(map(len, rows))
    columns = list(runs) + [c for v in (extra or {}).values() for c in v if c not in runs]
    columns = list(dict.fromkeys(columns))
    lines = [f"{'':<{width}}  " + "  ".join(f"{c:>16}" for c in columns)]
    lines += [
        f"{row:<{width}}  " + "  ".join(f"{values.get(c, ''):>16}" for c in columns)
        for row, values in rows.items()
    ]
    return "\n".join(lines)


@dataclass
class TwoMachines:
    """A writer's build (cold, fills the cache) and a reader's (a fresh machine, the mirror down)."""

    cache: RemoteCache  # still running inside `writer_then_reader`
    env: Dict[str, str]  # ci_env: pass it to any further run_pants in these checkouts
    writer: Path
    reader: Path
    writer_store: Path
    reader_store: Path
    written: subprocess.CompletedProcess
    read: Optional[subprocess.CompletedProcess]  # None when the writer failed
    writer_seconds: float
    reader_seconds: float
    mirror_requests: List[str]  # the paths the writer asked the mirror for

    @property
    def mirror_bytes(self) -> int:
        return file_bytes(apk_mirror(), self.mirror_requests)


@contextlib.contextmanager
def writer_then_reader(
    workdir: Path, args: Sequence[str], writer_timeout: float = 1200, reader_timeout: float = 1200
) -> Iterator[TwoMachines]:
    """`./pants <args>` with pants.ci.toml and a real BuildGrid: a writer checkout, then a reader.

    Both without pantsd, each with its own empty local store. The writer's only package mirror is
    an HTTP server that is shut down before the reader runs: the same URL (so the same fetch keys),
    connection refused. The reader is a copy of the writer's checkout at another path, made before
    the writer builds.
    """
    with buildgrid_cache(workdir) as cache:
        with file_server(apk_mirror()) as mirror:
            env = ci_env(cache, mirror.url)
            writer = make_checkout(workdir / "writer")
            reader = copy_checkout(writer, workdir / "reader" / "elsewhere")
            start = time.monotonic()
            written = run_pants(
                writer, *args, store=workdir / "store-writer", extra_env=env, timeout=writer_timeout
            )
            writer_seconds = time.monotonic() - start
        read, reader_seconds = None, 0.0
        if written.returncode == 0:
            start = time.monotonic()
            read = run_pants(
                reader, *args, store=workdir / "store-reader", extra_env=env, timeout=reader_timeout
            )
            reader_seconds = time.monotonic() - start
        yield TwoMachines(
            cache=cache,
            env=env,
            writer=writer,
            reader=reader,
            writer_store=workdir / "store-writer",
            reader_store=workdir / "store-reader",
            written=written,
            read=read,
            writer_seconds=writer_seconds,
            reader_seconds=reader_seconds,
            mirror_requests=list(mirror.requests),
        )
