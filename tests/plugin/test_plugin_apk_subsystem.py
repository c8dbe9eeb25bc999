"""`[apk]` options: lockfile paths beside specs, and mirrors read the way the core reads them."""

from pants.testutil.option_util import create_subsystem
from pants_oci.subsystems.apk import ApkSubsystem, lockfile_for_spec

MIRRORS = {
    "https://dl-cdn.alpinelinux.org/alpine/": [
        "file:///srv/alpine/",
        "https://dl-cdn.alpinelinux.org/alpine/",
    ],
}


def test_lockfile_sits_next_to_its_spec() -> None:
    assert lockfile_for_spec("images/static/apko.yaml") == "images/static/apko.lock.json"


def test_subsystem_maps_resolves_and_mirrors() -> None:
    apk = create_subsystem(ApkSubsystem, resolves={"static": "images/static/apko.yaml"}, mirrors=MIRRORS)
    assert apk.lockfiles == {"static": "images/static/apko.lock.json"}
    url = "https://dl-cdn.alpinelinux.org/alpine/v3.19/main/x86_64/tzdata-2023d-r0.apk"
    assert apk.mirror_map.candidates(url) == ["file:///srv/alpine/v3.19/main/x86_64/tzdata-2023d-r0.apk", url]
