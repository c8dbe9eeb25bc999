"""Pants backend `pants_oci`: APK lockfiles and layers, and OCI images (see README)."""

from pants_oci import target_types as _target_types
from pants_oci.goals import generate_apk_lockfiles, package, publish, run, verify
from pants_oci.subsystems.ocibuild_tool import OciBuildTool
from pants_oci.util_rules import apk_downloads, layers, ocibuild_process


def target_types():
    return _target_types.target_types()


def rules():
    return (
        *ocibuild_process.rules(),
        *OciBuildTool.rules(),
        *apk_downloads.rules(),
        *layers.rules(),
        *package.rules(),
        *generate_apk_lockfiles.rules(),
        *run.rules(),
        *publish.rules(),
        *verify.rules(),
    )
