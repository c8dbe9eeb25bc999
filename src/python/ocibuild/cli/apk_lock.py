"""`python -m ocibuild apk-lock --spec images/static/apko.yaml --output images/static/apko.lock.json
[--mirror PREFIX=MIRROR1,MIRROR2 ...] [--check]`, or `--request request.json` (an
ocibuild.contract.ApkLockRequest).

Writes the lockfile atomically (an error leaves the old one as it was) and prints what changed.
`--check` only compares the lock's recorded spec checksum with the spec: exit 1 when stale.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional, Sequence, Tuple

from ocibuild.apk.fetch import Fetcher, Mirrors
from ocibuild.apk.locker import describe_changes, lock
from ocibuild.apk.lockfile import Lockfile, dump_lockfile, load_lockfile
from ocibuild.apk.spec import load_spec
from ocibuild.common.atomic import write_bytes_atomically
from ocibuild.contract import RELOCK, ApkLockRequest, is_request_argv, read_request
from ocibuild.errors import OciBuildError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ocibuild apk-lock", description="Resolve an apko-style spec into a lockfile."
    )
    p.add_argument(
        "--spec", required=True, help="the YAML spec (contents: repositories, keyring, packages; archs)"
    )
    p.add_argument("--output", required=True, help="the lockfile to write (or to check)")
    p.add_argument("--name", help="the spec's name recorded in the lock (default: --spec as given)")
    p.add_argument(
        "--mirror",
        action="append",
        default=[],
        metavar="PREFIX=MIRROR1,MIRROR2",
        help="fetch URLs starting with PREFIX from these prefixes instead, in order (repeatable)",
    )
    p.add_argument("--timeout", type=float, default=30, help="seconds per HTTP request")
    p.add_argument("--retries", type=int, default=3, help="attempts per URL on connection errors and 5xx")
    p.add_argument(
        "--check", action="store_true", help="exit 1 if the lockfile is missing or stale; fetch nothing"
    )
    return p


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise OciBuildError(f"cannot read {what} {path}: {e.strerror}") from None


def _existing_lock(path: str) -> Optional[Lockfile]:
    if not os.path.exists(path):
        return None
    text = _read(path, "lockfile").decode("utf-8", "replace")
    try:
        return load_lockfile(text, path)
    except OciBuildError as e:
        print(f"note: replacing an unreadable lockfile ({e})", file=sys.stderr)
        return None


def _from_flags(argv: Sequence[str]) -> ApkLockRequest:
    args = _parser().parse_args(list(argv))
    Mirrors.parse(args.mirror)  # a malformed --mirror is an error naming it
    return ApkLockRequest(
        spec=args.spec,
        output=args.output,
        name=args.name,
        mirrors=tuple(_mirror_flag(m) for m in args.mirror),
        timeout=args.timeout,
        retries=args.retries,
        check=args.check,
    )


def _mirror_flag(flag: str) -> Tuple[str, Tuple[str, ...]]:
    prefix, _, targets = flag.partition("=")
    return prefix, tuple(m for m in targets.split(",") if m)


def _check(request: ApkLockRequest, spec_bytes: bytes) -> int:
    if not os.path.exists(request.output):
        print(f"{request.output} is missing: {RELOCK} to create it")
        return 1
    locked = load_lockfile(_read(request.output, "lockfile").decode("utf-8", "replace"), request.output)
    problem = locked.staleness(request.output, spec_bytes, strict=True)
    if problem:
        print(problem)
        return 1
    print(f"{request.output} is up to date with {request.spec}")
    return 0


def main(argv: Sequence[str]) -> int:
    request = read_request(ApkLockRequest, argv) if is_request_argv(argv) else _from_flags(argv)
    spec_bytes = _read(request.spec, "spec")
    if request.check:
        return _check(request, spec_bytes)
    try:
        spec_text = spec_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise OciBuildError(f"{request.spec}: not UTF-8 text") from None
    spec = load_spec(spec_text, request.spec)
    fetcher = Fetcher(Mirrors(dict(request.mirrors)), timeout=request.timeout, retries=request.retries)
    old = _existing_lock(request.output)
    name = request.name or request.spec.replace(os.sep, "/")
    new = lock(spec, spec_bytes, name, fetcher, os.path.dirname(os.path.abspath(request.spec)))
    write_bytes_atomically(request.output, dump_lockfile(new).encode("ascii"))
    changes: List[str] = describe_changes(old, new)
    for line in changes:
        print(line)
    if not changes:
        print(f"{request.output}: no package changes")
    return 0
