"""Tars in tests: small ones made from files, members read back (failing with the member's name when
it has no content)."""

from __future__ import annotations

import io
import tarfile
from typing import Mapping, Union


def member_bytes(tar: tarfile.TarFile, member: Union[str, tarfile.TarInfo]) -> bytes:
    """The content of a regular file (or hard link to one) in `tar`."""
    reader = tar.extractfile(member)
    if reader is None:
        name = member if isinstance(member, str) else member.name
        raise AssertionError(f"{name!r} in the tar is not a regular file or a hard link to one")
    with reader:
        return reader.read()


def tar_of(files: Mapping[str, bytes], format: int = tarfile.USTAR_FORMAT) -> bytes:
    """An uncompressed tar of regular files, in the mapping's order (tarfile's defaults otherwise)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=format) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
