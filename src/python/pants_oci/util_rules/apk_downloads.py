"""Downloads the packages of an APK lockfile, each pinned by its sha256 and size.

Pants' DownloadFile verifies and caches every file by content, so a package is fetched once per
machine (or served from the remote cache's CAS). Mirrors are tried in order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Tuple

from pants.engine.fs import AddPrefix, Digest, DownloadFile, FileDigest, MergeDigests
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants_oci.errors import ApkDownloadError
from pants_oci.subsystems.apk import ApkSubsystem

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApkDownload:
    url: str
    sha256: str
    size: int


@dataclass(frozen=True)
class ApkDownloadsRequest:
    downloads: Tuple[ApkDownload, ...]
    prefix: str


@dataclass(frozen=True)
class DownloadedApk:
    digest: Digest


@rule
async def download_apk(download: ApkDownload, apk: ApkSubsystem) -> DownloadedApk:
    candidates = apk.mirror_map.candidates(download.url)
    failures = []
    for candidate in candidates:
        try:
            digest = await Get(Digest, DownloadFile(candidate, FileDigest(download.sha256, download.size)))
            return DownloadedApk(digest)
        except Exception as e:  # the engine raises its own error types; try the next mirror
            failures.append(f"{candidate}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    raise ApkDownloadError(
        f"could not download {download.url} (sha256 {download.sha256}, {download.size} bytes) "
        f"from any of {len(candidates)} location(s): {'; '.join(failures)}. Check [apk].mirrors "
        "and the network, or re-lock if the package left the repository."
    )


@rule
async def download_apks(request: ApkDownloadsRequest) -> Digest:
    downloaded = await MultiGet(Get(DownloadedApk, ApkDownload, d) for d in request.downloads)
    merged = await Get(Digest, MergeDigests(d.digest for d in downloaded))
    return await Get(Digest, AddPrefix(merged, request.prefix))


def rules():
    return collect_rules()
