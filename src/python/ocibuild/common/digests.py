"""Content digests in the forms the formats spell them: OCI's `sha256:<hex>`, apk's Q1 and apko's
`<algorithm>-<base64>`. One place, so every package hashes the same way."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Tuple

__all__ = [
    "is_sha256_digest",
    "sha256_digest",
    "sha256_hex",
    "file_sha256_digest",
    "q1_checksum",
    "q1_of_sha1",
    "base64_checksum",
]

_CHUNK = 1 << 20
_SHA256_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def is_sha256_digest(value: object) -> bool:
    """`sha256:` and 64 lower-case hex digits, nothing else (no trailing newline either)."""
    return isinstance(value, str) and _SHA256_DIGEST.fullmatch(value) is not None


def sha256_hex(data: bytes) -> str:
    """The bare lowercase hex sha256 (APKINDEX/lock `sha256` fields)."""
    return hashlib.sha256(data).hexdigest()


def sha256_digest(data: bytes) -> str:
    """The OCI digest of `data`: "sha256:<hex>"."""
    return "sha256:" + sha256_hex(data)


def file_sha256_digest(path: Path) -> Tuple[str, int]:
    """(OCI digest, size in bytes) of a file, read in chunks so large blobs never sit in memory."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
            size += len(chunk)
    return "sha256:" + h.hexdigest(), size


def base64_checksum(data: bytes, algorithm: str) -> str:
    """ "<algorithm>-<base64 digest>": apko's member checksums and the lock's spec hash."""
    return f"{algorithm}-{base64.b64encode(hashlib.new(algorithm, data).digest()).decode('ascii')}"


def q1_checksum(control_member: bytes) -> str:
    """apk's package identity (index C:, lockfile checksum): "Q1" + base64(sha1(raw control member))."""
    return q1_of_sha1(hashlib.sha1(control_member).digest())


def q1_of_sha1(sha1_digest: bytes) -> str:
    """apk's Q1 spelling of a sha1 already computed (installed-db Z: lines of package files)."""
    return "Q1" + base64.b64encode(sha1_digest).decode("ascii")
