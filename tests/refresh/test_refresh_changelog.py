"""The changelog on real Alpine packages (the offline mirror's v3.13 and v3.19 tzdata and CA
bundles) and on fixture packages made with testutil.apkbuild."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import pytest
from ocibuild.apk.lockfile import LockedPackage, LockedSection, Lockfile
from ocibuild.errors import OciBuildError
from ocibuild.refresh.changelog import compute_changelog, render_markdown, render_text
from ocibuild.refresh.content import ca_roots, tz_zones
from testutil.apkbuild import build_apk, reg_file, symlink
from testutil.paths import apk_mirror

OLD_DIR = "alpine/v3.13/main/aarch64"
NEW_DIR = "alpine/v3.19/main/x86_64"


def mirror_file(folder: str, name: str) -> bytes:
    return (apk_mirror() / folder / name).read_bytes()


def locked(name: str, version: str, arch: str = "x86_64", sha: str = "0" * 64) -> LockedPackage:
    section = LockedSection(0, 1, "sha1-AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    return LockedPackage(
        name=name,
        version=version,
        architecture=arch,
        url=f"https://dl-cdn.alpinelinux.org/alpine/test/{arch}/{name}-{version}.apk",
        checksum="Q1" + "A" * 27 + "=",
        signature=section,
        control=section,
        data=section,
        sha256=sha,
    )


def lock(*packages: LockedPackage) -> Lockfile:
    return Lockfile(spec_name="static", spec_checksum=None, keys=(), repositories=(), packages=packages)


def test_real_ca_bundles_roots_added_and_removed_by_subject_and_fingerprint() -> None:
    old = ca_roots(mirror_file(OLD_DIR, "ca-certificates-bundle-20191127-r5.apk"), "old")
    new = ca_roots(mirror_file(NEW_DIR, "ca-certificates-bundle-20230506-r0.apk"), "new")
    assert (len(old), len(new)) == (137, 141)
    subjects_added = {r.subject for r in new - old}
    subjects_removed = {r.subject for r in old - new}
    # Let's Encrypt's second root arrived in Mozilla's store after 2019; EE Certification Centre left.
    assert "CN=ISRG Root X2,O=Internet Security Research Group,C=US" in subjects_added
    assert any("CN=EE Certification Centre Root CA" in s for s in subjects_removed)
    for root in new:
        assert len(root.sha256.split(":")) == 32 and root.sha256 == root.sha256.upper()


def test_real_tzdata_zones_2021a_to_2023d() -> None:
    old = tz_zones(mirror_file(OLD_DIR, "tzdata-2021a-r0.apk"), "old")
    new = tz_zones(mirror_file(NEW_DIR, "tzdata-2023d-r0.apk"), "new")
    # 2022b added Europe/Kyiv, 2022g America/Ciudad_Juarez, 2021b Pacific/Kanton; none removed.
    assert sorted(new - old) == ["America/Ciudad_Juarez", "Europe/Kyiv", "Pacific/Kanton"]
    assert not old - new
    assert "UTC" in new and "Europe/Paris" in new
    assert not any(z.startswith(("posix/", "right/")) for z in new)
    assert "zone.tab" not in new and "iso3166.tab" not in new


def test_changelog_of_two_real_locks_text_and_markdown() -> None:
    files: Dict[str, bytes] = {
        "tzdata-2021a-r0": mirror_file(OLD_DIR, "tzdata-2021a-r0.apk"),
        "tzdata-2023d-r0": mirror_file(NEW_DIR, "tzdata-2023d-r0.apk"),
        "ca-certificates-bundle-20191127-r5": mirror_file(OLD_DIR, "ca-certificates-bundle-20191127-r5.apk"),
        "ca-certificates-bundle-20230506-r0": mirror_file(NEW_DIR, "ca-certificates-bundle-20230506-r0.apk"),
    }
    old = lock(
        locked("tzdata", "2021a-r0"),
        locked("ca-certificates-bundle", "20191127-r5"),
        locked("musl", "1.2.4-r2"),
        locked("alpine-release", "3.19.1-r0"),
        locked("gone", "1.0-r0"),
    )
    new = lock(
        locked("tzdata", "2023d-r0", sha="1" * 64),
        locked("ca-certificates-bundle", "20230506-r0", sha="1" * 64),
        locked("musl", "1.2.4-r2"),
        locked("alpine-release", "3.19.0-r0", sha="1" * 64),
        locked("fresh", "2.0-r1"),
    )
    asked = []

    def package_bytes(pkg: LockedPackage) -> bytes:
        asked.append(pkg.name)
        return files[f"{pkg.name}-{pkg.version}"]

    log = compute_changelog("static", old, new, package_bytes)
    assert [(c.kind, c.name, c.old, c.new) for c in log.packages] == [
        ("downgraded", "alpine-release", "3.19.1-r0", "3.19.0-r0"),
        ("upgraded", "ca-certificates-bundle", "20191127-r5", "20230506-r0"),
        ("added", "fresh", None, "2.0-r1"),
        ("removed", "gone", "1.0-r0", None),
        ("upgraded", "tzdata", "2021a-r0", "2023d-r0"),
    ]
    assert sorted(set(asked)) == ["ca-certificates-bundle", "tzdata"]  # only the content diffs fetch
    assert log.tz is not None and (log.tz.old_release, log.tz.new_release) == ("2021a", "2023d")
    assert log.ca is not None and (len(log.ca.added), len(log.ca.removed)) == (41, 37)

    text = render_text([log])
    assert "upgraded tzdata 2021a-r0 → 2023d-r0" in text
    assert "tzdata release 2021a → 2023d" in text
    assert "zone added: Europe/Kyiv" in text
    assert "removed: 1.2.840.113549.1.9.1=pki@sk.ee,CN=EE Certification Centre Root CA" in text
    assert "musl" not in text
    markdown = render_markdown([log])
    assert "| upgraded | `tzdata` | 2021a-r0 | 2023d-r0 | x86_64 |" in markdown
    assert "### tzdata: release 2021a → 2023d" in markdown
    assert "- zone added: `America/Ciudad_Juarez`" in markdown
    assert render_text([log]) == text  # deterministic


def test_same_lock_is_no_change() -> None:
    same = lock(locked("tzdata", "2023d-r0"))
    log = compute_changelog("static", same, same, lambda p: pytest.fail("nothing to fetch"))
    assert not log.changed
    assert render_text([log]) == "resolve static: no package changed\n"
    assert "No package changed." in render_markdown([log])


def test_one_architecture_only_is_named() -> None:
    old = lock(locked("a", "1.0-r0", "x86_64"), locked("a", "1.0-r0", "aarch64"))
    new = lock(locked("a", "1.1-r0", "x86_64"), locked("a", "1.0-r0", "aarch64"))
    text = render_text([compute_changelog("r", old, new, lambda p: b"")])
    assert "upgraded a 1.0-r0 → 1.1-r0 (x86_64)" in text


def test_fixture_tzdata_links_count_as_zones(tmp_path: Path) -> None:
    tzif = b"TZif2" + b"\0" * 40
    apk = build_apk(
        "tzdata",
        "2024a-r0",
        files=[
            reg_file("usr/share/zoneinfo/Europe/Paris", tzif),
            symlink("usr/share/zoneinfo/Europe/Monaco", "Paris"),
            symlink("usr/share/zoneinfo/Broken", "Nowhere"),
            reg_file("usr/share/zoneinfo/zone1970.tab", b"# table\n"),
            reg_file("usr/share/zoneinfo/right/Europe/Paris", tzif),
            reg_file("usr/share/zoneinfo/posix/Europe/Paris", tzif),
        ],
    )
    assert tz_zones(apk, "fixture") == {"Europe/Paris", "Europe/Monaco"}


def test_not_a_ca_package_fails_naming_it() -> None:
    apk = build_apk("ca-certificates-bundle", "1-r0", files=[reg_file("etc/other", b"x")])
    with pytest.raises(OciBuildError, match=r"^pkg.apk: has no etc/ssl/certs/ca-certificates.crt"):
        ca_roots(apk, "pkg.apk")


def test_old_package_gone_from_the_mirrors_is_said_not_compared() -> None:
    new_tz = mirror_file(NEW_DIR, "tzdata-2023d-r0.apk")
    old = lock(locked("tzdata", "2021a-r0"), locked("ca-certificates-bundle", "20191127-r5"))
    new = lock(locked("tzdata", "2023d-r0"), locked("ca-certificates-bundle", "20230506-r0"))
    log = compute_changelog("static", old, new, lambda p: new_tz if p.version == "2023d-r0" else None)
    assert log.tz is not None and not log.tz.compared and log.tz.new_release == "2023d"
    text = render_text([log])
    assert "tzdata release 2021a → 2023d" in text
    assert "zones not compared: the old package is on no configured mirror any more" in text
    assert "CA roots (ca-certificates-bundle 20191127-r5 → 20230506-r0): not compared" in text
    assert "- roots not compared:" in render_markdown([log])
