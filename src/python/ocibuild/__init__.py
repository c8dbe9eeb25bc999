"""ocibuild: the Pants-independent core that builds APK lockfiles, layers and OCI images.

The plugin reaches it through `ocibuild.contract` (the requests and results of its Processes) and
`python -m ocibuild <command>`; the packages below are the library those commands use.
"""

__all__ = ["apk", "common", "contract", "errors", "layer", "oci", "strictload"]
