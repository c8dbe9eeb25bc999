"""Benchmark (prints figures; not a test): building `images/static` plus the examples' images.

    PYTHONPATH=tests python3.9 benchmarks/build_bench.py [--workdir DIR] [--runs 3]

With pants.ci.toml and a real BuildGrid (testutil.remote_cache.writer_then_reader), in fresh
checkouts of this working tree:

1. cold: empty local store, no pantsd, the package mirror over HTTP (fills the remote cache);
2. fresh machine with a warm remote cache: another checkout path, an empty local store, no
   pantsd, the mirror shut down;
3. no-op rebuild in the first checkout with pantsd warm, beside `./pants --version` (also with
   pantsd: the floor Pants itself sets); the median of `--runs`;
4. rebuild with pantsd after changing one app source file (examples/hello-go/main.go's message).

For each: wall time, Processes run locally (cacheable ones, and Pants' uncacheable probes) and
served from the local or remote cache (Pants' stats; 1 and 2 also classify with `-ldebug`), and
bytes: from the mirror, the local store's size on disk after the build, and what a fresh machine
read from the remote CAS (Pants 2.17 reports that only as the observation histogram
`remote_store_blob_bytes_downloaded`, which needs the hdrhistogram plugin: a second fresh machine
runs with `--plugins=hdrhistogram`). Prints, asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from testutil.checkout import make_checkout, run_pants, stop_pantsd  # noqa: E402
from testutil.remote_cache import (  # noqa: E402
    BuildStats,
    disk_bytes,
    histogram_sum,
    parse,
    stats_table,
    writer_then_reader,
)

PACKAGE = ("--filter-target-type=oci_image", "package", "images/static::", "examples::")
APP_SOURCE = "examples/hello-go/main.go"


def timed(checkout: Path, args: Sequence[str], store: Path, env: Dict[str, str]):
    start = time.monotonic()
    result = run_pants(checkout, *args, store=store, extra_env=env, timeout=3600, pantsd=True)
    seconds = time.monotonic() - start
    if result.returncode != 0:
        raise SystemExit(f"build_bench: `pants {' '.join(args)}` failed:\n{result.stderr[-3000:]}")
    return seconds, parse(result.stdout + result.stderr)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="an empty folder (default: a new temporary one)")
    parser.add_argument("--runs", type=int, default=3, help="timed no-op runs and --version runs")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="build-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"build_bench: working in {workdir}; load average before: {os.getloadavg()}", flush=True)

    runs: Dict[str, BuildStats] = {}
    extra: Dict[str, Dict[str, str]] = {
        "wall time (s)": {},
        "bytes from the mirror": {},
        "local store on disk": {},
    }
    with writer_then_reader(workdir, ("-ldebug", *PACKAGE), 3600, 3600) as machines:
        for name, result, seconds, store in (
            ("cold", machines.written, machines.writer_seconds, machines.writer_store),
            ("fresh machine", machines.read, machines.reader_seconds, machines.reader_store),
        ):
            if result is None or result.returncode != 0:
                raise SystemExit(
                    f"build_bench: the {name} build failed:\n{(result.stderr if result else '')[-3000:]}"
                )
            runs[name] = parse(result.stdout + result.stderr)
            extra["wall time (s)"][name] = f"{seconds:.1f}"
            extra["local store on disk"][name] = f"{disk_bytes(store):,}"
        extra["bytes from the mirror"].update(
            {"cold": f"{machines.mirror_bytes:,}", "fresh machine": "0 (down)"}
        )
        print(f"build_bench: cold and fresh-machine builds done; load average: {os.getloadavg()}", flush=True)

        # Once more as a fresh machine, with the hdrhistogram plugin: Pants then logs the bytes it
        # read from the remote CAS (not in the job or the runs above: resolving it is a download).
        histograms = make_checkout(workdir / "reader-histograms" / "deep")
        result = run_pants(
            histograms,
            "--plugins=hdrhistogram",
            *PACKAGE,
            store=workdir / "store-reader-histograms",
            extra_env=machines.env,
            timeout=3600,
        )
        downloaded = histogram_sum(result.stdout + result.stderr, "remote_store_blob_bytes_downloaded")
        extra["bytes from the remote CAS (hdrhistogram)"] = {
            "fresh machine": f"{downloaded:,}"
            if downloaded is not None
            else f"n/a (exit {result.returncode})"
        }

        writer, store, env = machines.writer, machines.writer_store, machines.env
        try:
            timed(writer, PACKAGE, store, env)  # starts pantsd and fills its memo
            noop: List[float] = []
            for _ in range(args.runs):
                seconds, runs["no-op (pantsd)"] = timed(writer, PACKAGE, store, env)
                noop.append(seconds)
            version = [timed(writer, ("--version",), store, env)[0] for _ in range(args.runs)]
            extra["wall time (s)"]["no-op (pantsd)"] = f"{statistics.median(noop):.2f}"
            extra["wall time (s)"]["--version (pantsd)"] = f"{statistics.median(version):.2f}"

            source = writer / APP_SOURCE
            source.write_text(source.read_text().replace("Hello Distroless", "Hello Distroless (bench)"))
            seconds, runs["one source changed"] = timed(writer, PACKAGE, store, env)
            extra["wall time (s)"]["one source changed"] = f"{seconds:.1f}"
        finally:
            stop_pantsd(writer)
    print(stats_table(runs, extra))
    print(f"build_bench: load average after: {os.getloadavg()}; no-op runs {noop}, --version runs {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
