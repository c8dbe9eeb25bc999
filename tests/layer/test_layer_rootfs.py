"""Path-level safety rules of the in-memory root (ocibuild.layer.rootfs)."""

from __future__ import annotations

import pytest
from ocibuild.errors import OciBuildError
from ocibuild.layer.rootfs import ADDED, IDENTICAL, KEPT, REPLACED, RootFs
from ocibuild.layer.tarball import DIR, FILE, SYMLINK, TarEntry


def never(a: str, b: str) -> bool:
    return False


def a_replaces_b(a: str, b: str) -> bool:
    return (a, b) == ("a", "b")


def test_identical_entries_may_be_shipped_twice_first_owner_keeps_it():
    fs = RootFs()
    assert fs.install(TarEntry("etc", DIR, 0o755), "a", never) == ADDED
    assert fs.install(TarEntry("etc/x", FILE, 0o644, content=b"1"), "a", never) == ADDED
    assert fs.install(TarEntry("etc", DIR, 0o755), "b", never) == ADDED
    assert fs.install(TarEntry("etc/x", FILE, 0o644, content=b"1"), "b", never) == IDENTICAL
    assert fs.owner("etc/x") == "a"


def test_different_content_needs_replaces():
    fs = RootFs()
    fs.install(TarEntry("x", FILE, 0o644, content=b"from b"), "b", never)
    with pytest.raises(OciBuildError, match="package a: x differs from the one of b"):
        fs.install(TarEntry("x", FILE, 0o644, content=b"from a"), "a", never)
    assert fs.install(TarEntry("x", FILE, 0o644, content=b"from a"), "a", a_replaces_b) == REPLACED
    assert (fs.get("x").content, fs.owner("x")) == (b"from a", "a")


def test_replaced_package_installed_later_keeps_the_replacing_file():
    fs = RootFs()
    fs.install(TarEntry("x", FILE, 0o644, content=b"from a"), "a", a_replaces_b)
    assert fs.install(TarEntry("x", FILE, 0o644, content=b"from b"), "b", a_replaces_b) == KEPT
    assert (fs.get("x").content, fs.owner("x")) == (b"from a", "a")


def test_mode_difference_is_a_conflict_too():
    fs = RootFs()
    fs.install(TarEntry("x", FILE, 0o644, content=b"1"), "b", never)
    with pytest.raises(OciBuildError, match="differs"):
        fs.install(TarEntry("x", FILE, 0o755, content=b"1"), "a", never)


def test_directory_and_file_never_share_a_path():
    fs = RootFs()
    fs.install(TarEntry("lib", DIR, 0o755), "b", never)
    with pytest.raises(OciBuildError, match="package a: lib is a symlink but b has a dir there"):
        fs.install(TarEntry("lib", SYMLINK, 0o777, link_target="usr/lib"), "a", a_replaces_b)


@pytest.mark.parametrize(
    "target, where",
    [
        ("../../..", "outside the image root"),
        ("/etc", "elsewhere in the image"),
        ("other", "elsewhere in the image"),
    ],
)
def test_nothing_is_written_through_a_symlink(target, where):
    fs = RootFs()
    fs.install(TarEntry("var", DIR, 0o755), "a", never)
    fs.install(TarEntry("var/run", SYMLINK, 0o777, link_target=target), "a", never)
    with pytest.raises(OciBuildError) as e:
        fs.install(TarEntry("var/run/x/y", FILE, 0o644), "b", never)
    assert str(e.value) == (
        f"package b: var/run/x/y would be written through the symlink /var/run -> {target}"
        f" (leading {where}); packages must not write through symlinks"
    )


def test_nothing_is_written_below_a_file():
    fs = RootFs()
    fs.install(TarEntry("f", FILE, 0o644), "a", never)
    with pytest.raises(OciBuildError, match="below /f, which is a file"):
        fs.install(TarEntry("f/g", FILE, 0o644), "a", never)


def test_same_package_listing_a_path_twice_is_refused():
    fs = RootFs()
    fs.install(TarEntry("f", FILE, 0o644, content=b"1"), "a", never)
    with pytest.raises(OciBuildError, match="appears twice"):
        fs.install(TarEntry("f", FILE, 0o644, content=b"2"), "a", never)


@pytest.mark.parametrize(
    "late, message",
    [
        (TarEntry("usr", SYMLINK, 0o777, link_target="/elsewhere"), "through the symlink /usr"),
        (TarEntry("usr/share", SYMLINK, 0o777, link_target="../x"), "through the symlink /usr/share"),
        (TarEntry("usr/share", FILE, 0o644, content=b"x"), "below /usr/share, which is a file"),
    ],
)
def test_a_directory_checked_clear_is_checked_again_once_an_ancestor_stops_being_one(late, message):
    # The root remembers directories found clear (so one directory's many files are not each walked
    # up); a later non-directory at such a path (the directories were implicit) must not slip through.
    fs = RootFs()
    fs.install(TarEntry("usr/share/zoneinfo/UTC", FILE, 0o644, content=b"a"), "a", never)
    fs.install(late, "b", never)
    with pytest.raises(OciBuildError, match=message):
        fs.install(TarEntry("usr/share/zoneinfo/GMT", FILE, 0o644, content=b"b"), "c", never)
    with pytest.raises(OciBuildError, match=message):
        fs.put_generated(TarEntry("usr/share/zoneinfo/Zulu", FILE, 0o644, content=b"c"))
