"""Fetches the packages of an APK lockfile, each pinned by its sha256 and size, in cacheable Processes.

One `python -m ocibuild fetch-apk` Process per package (ocibuild.contract.ApkFetchRequest): the
verified .apk is a Process *output*, so it is stored in the local and the remote cache like a layer.
A machine with a warm remote cache gets every package (or just the layer built from them) from the
cache and downloads nothing from the mirrors. Pants' DownloadFile cannot do that: 2.17 looks only in
the local store before downloading (docs/remote-cache.md).

The request, and so the Process's cache key, holds the lock's URL, sha256 and size and the URLs that
`[apk].mirrors` map the package to: machines share fetches when their mirror strings are the same
(pants.ci.toml). The layer's key never depends on them: it holds the .apk bytes only.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Tuple

from ocibuild.contract import OUTPUT_DIR, ApkFetchRequest
from pants.engine.fs import AddPrefix, Digest, MergeDigests, RemovePrefix
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.logging import LogLevel
from pants_oci.subsystems.apk import ApkSubsystem
from pants_oci.util_rules.ocibuild_process import OciBuildProcess, OciBuildResult


@dataclass(frozen=True)
class ApkDownload:
    url: str
    sha256: str
    size: int


@dataclass(frozen=True)
class ApkDownloadsRequest:
    downloads: Tuple[ApkDownload, ...]
    prefix: str  # the folder the packages go in, by the basename of their URL


def fetch_request(download: ApkDownload, apk: ApkSubsystem) -> ApkFetchRequest:
    candidates = tuple(apk.mirror_map.candidates(download.url))
    return ApkFetchRequest(
        url=download.url,
        sha256=download.sha256,
        size=download.size,
        output=f"{OUTPUT_DIR}/{posixpath.basename(download.url)}",
        candidates=() if candidates == (download.url,) else candidates,
    )


@rule(desc="Fetch APK packages")
async def fetch_apks(request: ApkDownloadsRequest, apk: ApkSubsystem) -> Digest:
    fetches = [fetch_request(d, apk) for d in request.downloads]
    results = await MultiGet(
        Get(
            OciBuildResult,
            OciBuildProcess(
                request=fetch,
                description=f"Fetch {posixpath.basename(fetch.url)}",
                output_files=(fetch.output,),
                level=LogLevel.DEBUG,
            ),
        )
        for fetch in fetches
    )
    merged = await Get(Digest, MergeDigests(r.output_digest for r in results))
    packages = await Get(Digest, RemovePrefix(merged, OUTPUT_DIR))
    return await Get(Digest, AddPrefix(packages, request.prefix))


def rules():
    return collect_rules()
