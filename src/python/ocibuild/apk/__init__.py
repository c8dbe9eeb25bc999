"""Alpine packages: specs, indexes, resolution, the lockfile, downloads and package verification."""

__all__ = [
    "archive",
    "checksums",
    "fetch",
    "index",
    "locker",
    "lockfile",
    "mirrors",
    "pkginfo",
    "resolve",
    "signing",
    "spec",
    "version",
]
