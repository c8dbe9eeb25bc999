"""Reproducible layers: APK packages installed into an in-memory root, or plain files, as gzip'd tars."""

__all__ = [
    "accounts",
    "apk_contents",
    "apk_layer",
    "files_layer",
    "installed_db",
    "rootfs",
    "tarball",
    "tarread",
]
