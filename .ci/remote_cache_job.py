"""CI's remote-cache job (issue 11): a fresh machine with a warm cache runs nothing and downloads nothing.

With a real BuildGrid and pants.ci.toml, a writer checkout builds every image of `images/static`
and the examples cold (empty local store, no pantsd, the package mirror served over HTTP). Then
the mirror is shut down (connection refused at the same URL, the only `[apk].mirrors` location)
and a reader checkout at another path, with an empty local store and no pantsd, builds the same
targets. The job fails unless the reader succeeds, finds every Process the writer ran in the
cache, spawns nothing but Pants' uncacheable probes (not even a speculative start of a hit), makes
no DownloadFile (but the local pex tool) and writes the same `dist/` bytes. The checks are
testutil.remote_cache's; docs/remote-cache.md, section 7, says more.

    PYTHONPATH=tests python3 .ci/remote_cache_job.py [--junit dist/test-reports/remote-cache-job.xml]
        [--workdir DIR]

Prints a table of Pants' stats for both builds and one `remote-cache job: <reason>` line per
failure; exit 1 if there is one. Logs and checkouts stay in the printed work folder on failure.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from testutil.remote_cache import (  # noqa: E402
    disk_bytes,
    parse,
    served_by_cache_failures,
    stats_table,
    tree_failures,
    writer_then_reader,
)

# Every image of the base and the examples (their layers, binaries and packages come with them).
BUILD = ("-ldebug", "--filter-target-type=oci_image", "package", "images/static::", "examples::")
# Cold on a loaded 2-core machine: the Go standard library alone is ~4 min; generous on purpose.
WRITER_TIMEOUT = 3600
READER_TIMEOUT = 1800


def _tail(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip() and "[DEBUG]" not in line]
    return lines[-1].strip() if lines else "(no output)"


def run_job(workdir: Path) -> List[str]:
    with writer_then_reader(workdir, BUILD, WRITER_TIMEOUT, READER_TIMEOUT) as machines:
        pass
    written, read = machines.written, machines.read
    (workdir / "writer.log").write_text(written.stdout + written.stderr)
    if written.returncode != 0:
        return [f"the writer's cold build failed (exit {written.returncode}): {_tail(written.stderr)}"]
    assert read is not None
    (workdir / "reader.log").write_text(read.stdout + read.stderr)
    if read.returncode != 0:
        return [f"the reader's build failed (exit {read.returncode}): {_tail(read.stderr)}"]

    writer, reader = parse(written.stdout + written.stderr), parse(read.stdout + read.stderr)
    columns = ("writer (cold)", "reader (fresh)")
    print(
        stats_table(
            dict(zip(columns, (writer, reader))),
            {
                "wall time (s)": dict(
                    zip(columns, (f"{machines.writer_seconds:.0f}", f"{machines.reader_seconds:.0f}"))
                ),
                "bytes from the mirror": dict(zip(columns, (f"{machines.mirror_bytes:,}", "0 (down)"))),
                "local store on disk (bytes)": dict(
                    zip(
                        columns,
                        (f"{disk_bytes(machines.writer_store):,}", f"{disk_bytes(machines.reader_store):,}"),
                    )
                ),
            },
        ),
        flush=True,
    )
    return served_by_cache_failures(writer, reader) + tree_failures(
        machines.writer / "dist", machines.reader / "dist"
    )


def write_junit(path: Path, failures: Sequence[str], seconds: float) -> None:
    suite = ET.Element("testsuite", name="remote-cache-job", tests="1", failures=str(min(len(failures), 1)))
    case = ET.SubElement(
        suite, "testcase", classname=".ci.remote_cache_job", name="fresh_machine_served_by_remote_cache"
    )
    case.set("time", f"{seconds:.1f}")
    if failures:
        ET.SubElement(case, "failure", message=failures[0]).text = "\n".join(failures)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--junit", type=Path, help="write the result as a JUnit XML report here")
    parser.add_argument("--workdir", type=Path, help="an empty folder for checkouts, stores and logs")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="remote-cache-job-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"remote-cache job: working in {workdir}", flush=True)
    start = time.monotonic()
    try:
        failures = run_job(workdir)
    except Exception as e:  # a server that would not start, a timeout: still one line and a report
        failures = [f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"]
    if args.junit:
        write_junit(args.junit, failures, time.monotonic() - start)
    for failure in failures:
        print(f"remote-cache job: {failure}")
    if failures:
        print(f"remote-cache job: FAILED; logs in {workdir}")
        return 1
    for name in ("writer", "reader", "store-writer", "store-reader"):
        shutil.rmtree(workdir / name, ignore_errors=True)
    print(f"remote-cache job: passed in {time.monotonic() - start:.0f} s; logs in {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
