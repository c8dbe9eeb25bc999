"""Named exceptions the plugin's rules raise; each message is one line naming the target or file
at fault and what to do.

Errors about what a target's field names are `InvalidFieldException`s, as in Pants' own backends;
the lockfile errors stay `ValueError`s too, so that code catching those keeps working.
"""

from __future__ import annotations

from pants.engine.target import InvalidFieldException


class ApkLockfileError(ValueError):
    """An APK lockfile cannot be used for a layer: a package or architecture it lacks, or no pins."""


class StaleApkLockfileError(ApkLockfileError):
    """The lockfile's spec changed since it was locked: regenerate it."""


class MissingApkSpecError(ApkLockfileError):
    """`[apk].resolves` names a spec file that does not exist."""


class OciImageBaseError(InvalidFieldException):
    """An `oci_image`'s `base` is not one `oci_image` target."""


class OciImageLayersError(InvalidFieldException):
    """An `oci_image`'s `layers` names a target that is not an `apk_layer` or `oci_layer`."""


class OciLayerContentsError(InvalidFieldException):
    """An `oci_layer`'s `contents` gave no files."""


class OciBuildCoreError(Exception):
    """The `ocibuild` core's files cannot be read from the plugin's installation."""


class OciBuildProcessError(Exception):
    """A `python -m ocibuild` Process failed: its one-line `error:` message, with the plugin's hint."""
