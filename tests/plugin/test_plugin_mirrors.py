"""`[apk]` option helpers: mirror candidates and lockfile paths."""

from pants_oci.subsystems.apk import lockfile_for_spec, mirror_candidates

MIRRORS = {
    "https://dl-cdn.alpinelinux.org/alpine/": ["file:///srv/alpine/", "https://dl-cdn.alpinelinux.org/alpine/"],
    "https://dl-cdn.alpinelinux.org/alpine/edge/": ["https://edge.example/"],
}


def test_longest_prefix_wins_and_keeps_order() -> None:
    url = "https://dl-cdn.alpinelinux.org/alpine/v3.19/main/x86_64/tzdata-2023d-r0.apk"
    assert mirror_candidates(MIRRORS, url) == [
        "file:///srv/alpine/v3.19/main/x86_64/tzdata-2023d-r0.apk",
        url,
    ]
    edge = "https://dl-cdn.alpinelinux.org/alpine/edge/main/x86_64/APKINDEX.tar.gz"
    assert mirror_candidates(MIRRORS, edge) == ["https://edge.example/main/x86_64/APKINDEX.tar.gz"]


def test_unmapped_url_is_used_as_is() -> None:
    assert mirror_candidates(MIRRORS, "https://packages.wolfi.dev/os/x86_64/a.apk") == [
        "https://packages.wolfi.dev/os/x86_64/a.apk"
    ]


def test_lockfile_sits_next_to_its_spec() -> None:
    assert lockfile_for_spec("images/static/apko.yaml") == "images/static/apko.lock.json"
