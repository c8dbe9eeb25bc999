"""Write an output file all at once or not at all (temp file in the same folder + os.replace)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import BinaryIO, Iterator

from ocibuild.errors import OciBuildError


@contextlib.contextmanager
def atomic_output(path: str, mode: int = 0o644) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces `path` only if the block finishes without an exception.

    The final file mode is fixed (not taken from the umask) so that outputs look the same everywhere.
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix="-" + os.path.basename(path))
    except OSError as e:
        raise OciBuildError(f"{path}: cannot create the output file ({e.strerror}); check the path") from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        try:
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except OSError as e:
            raise OciBuildError(
                f"{path}: cannot write the output file ({e.strerror}); check the path"
            ) from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes_atomically(path: str, data: bytes, mode: int = 0o644) -> None:
    with atomic_output(path, mode) as f:
        f.write(data)
