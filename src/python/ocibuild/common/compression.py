"""gzip decoding shared by the apk reader, the apk layer and the OCI layer checks.

apk packages and OCI layer blobs are both concatenations of gzip members; one decoder reads both, so a
corrupt or truncated stream is detected the same way everywhere."""

from __future__ import annotations

import zlib
from typing import Optional

from ocibuild.errors import OciBuildError

__all__ = [
    "GZIP_WBITS",
    "gunzip",
    "GzipStream",
]

GZIP_WBITS = 31  # zlib: expect a gzip header and trailer (16 + MAX_WBITS)


def gunzip(member: bytes, what: str) -> bytes:
    """The decompressed bytes of ONE complete gzip member; `what` names it in the one-line error."""
    decoder = zlib.decompressobj(GZIP_WBITS)
    try:
        data = decoder.decompress(member) + decoder.flush()
    except zlib.error as e:
        raise OciBuildError(f"{what} is not valid gzip ({e})") from None
    if not decoder.eof:
        raise OciBuildError(f"{what} is truncated (its gzip stream ends early)")
    return data


class GzipStream:
    """Incremental decoder of concatenated gzip members. `feed` returns what decompressed so far; a
    corrupt stream is recorded in `problem` (not raised) so callers can report it with their context."""

    def __init__(self) -> None:
        self._decoder = zlib.decompressobj(GZIP_WBITS)
        self.problem: Optional[str] = None

    def feed(self, chunk: bytes) -> bytes:
        out = []
        while chunk and self.problem is None:
            try:
                out.append(self._decoder.decompress(chunk))
            except zlib.error as e:
                self.problem = f"the gzip stream is corrupt ({e})"
                break
            # A new member starts on the leftovers of the one that ended.
            chunk = self._decoder.unused_data
            if chunk:
                self._decoder = zlib.decompressobj(GZIP_WBITS)
        return b"".join(out)

    def finish(self) -> Optional[str]:
        """The problem with the whole stream, if any (corrupt or truncated)."""
        if self.problem is None and not self._decoder.eof:
            self.problem = "the gzip stream is truncated"
        return self.problem
