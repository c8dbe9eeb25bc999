"""Reading tar members back in tests, failing with the member's name when it has no content."""

from __future__ import annotations

import tarfile
from typing import Union


def member_bytes(tar: tarfile.TarFile, member: Union[str, tarfile.TarInfo]) -> bytes:
    """The content of a regular file (or hard link to one) in `tar`."""
    reader = tar.extractfile(member)
    if reader is None:
        name = member if isinstance(member, str) else member.name
        raise AssertionError(f"{name!r} in the tar is not a regular file or a hard link to one")
    with reader:
        return reader.read()
