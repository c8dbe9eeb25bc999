"""`python -m ocibuild fetch-apk --url URL --sha256 HEX --size N --output FILE [--candidate URL ...]`,
or `--request request.json` (an ocibuild.contract.ApkFetchRequest).

Fetches one locked package from the first candidate URL that serves exactly the pinned bytes (size
and sha256, checked by the core's Fetcher as every other download is) and writes it atomically.
The plugin runs it as a cacheable Process per package, so the verified .apk is a Process output: it
lands in the remote cache, and a machine with a warm cache never downloads it (docs/remote-cache.md).
"""

from __future__ import annotations

import argparse
from typing import Sequence

from ocibuild.apk.fetch import Fetcher
from ocibuild.apk.mirrors import Mirrors
from ocibuild.common.atomic import write_bytes_atomically
from ocibuild.contract import RELOCK, ApkFetchRequest, is_request_argv, read_request
from ocibuild.errors import OciBuildError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ocibuild fetch-apk", description="Fetch one locked package and verify its pin."
    )
    p.add_argument("--url", required=True, help="the package's URL in the lock")
    p.add_argument("--sha256", required=True, help="hex sha256 of the whole .apk, from the lock")
    p.add_argument("--size", required=True, type=int, help="bytes of the .apk, from the lock")
    p.add_argument("--output", required=True, help="where to write the verified .apk")
    p.add_argument(
        "--candidate",
        action="append",
        default=[],
        metavar="URL",
        help="fetch from this URL instead of --url, in the order given (repeatable)",
    )
    p.add_argument("--timeout", type=float, default=30, help="seconds per HTTP request")
    p.add_argument("--retries", type=int, default=3, help="attempts per URL on connection errors and 5xx")
    return p


def _from_flags(argv: Sequence[str]) -> ApkFetchRequest:
    args = _parser().parse_args(list(argv))
    request = ApkFetchRequest(
        url=args.url,
        sha256=args.sha256,
        size=args.size,
        output=args.output,
        candidates=tuple(args.candidate),
        timeout=args.timeout,
        retries=args.retries,
    )
    problem = request.invalid_reason()
    if problem:
        raise OciBuildError(f"fetch-apk: {problem}")
    return request


def fetch(request: ApkFetchRequest) -> None:
    # The candidates replace the URL itself, exactly as [apk].mirrors map it in the plugin.
    mirrors = Mirrors({request.url: request.candidates}) if request.candidates else Mirrors()
    fetcher = Fetcher(mirrors, timeout=request.timeout, retries=request.retries)
    try:
        data = fetcher.fetch(request.url, sha256=request.sha256, size=request.size)
    except OciBuildError as e:
        tried = str(e)
        prefix = f"cannot fetch {request.url}: "
        raise OciBuildError(
            f"could not download {request.url} (sha256 {request.sha256}, {request.size} bytes): "
            f"{tried[len(prefix):] if tried.startswith(prefix) else tried}; check [apk].mirrors and the "
            f"network, or {RELOCK} if the package left the repository"
        ) from None
    write_bytes_atomically(request.output, data)


def main(argv: Sequence[str]) -> int:
    request = read_request(ApkFetchRequest, argv) if is_request_argv(argv) else _from_flags(argv)
    fetch(request)
    return 0
