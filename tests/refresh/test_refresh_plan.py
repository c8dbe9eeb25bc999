"""The night's plan: dated tags, the build date, and which images are pushed."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from ocibuild.errors import OciBuildError
from ocibuild.refresh.plan import BuiltImage, Destination, build_date, date_tag, plan_night, render_plan

DAY = datetime.date(2024, 1, 31)


def test_dated_tags_keep_variants_apart() -> None:
    assert date_tag("latest", DAY) == "20240131"
    assert date_tag("nonroot", DAY) == "nonroot-20240131"


def test_build_date_from_source_date_epoch_in_utc_else_the_clock() -> None:
    assert build_date({"SOURCE_DATE_EPOCH": "1706745599"}) == DAY  # 23:59:59 UTC
    assert build_date({}) == datetime.datetime.now(datetime.timezone.utc).date()
    with pytest.raises(OciBuildError, match=r"^SOURCE_DATE_EPOCH='soon' is not a number"):
        build_date({"SOURCE_DATE_EPOCH": "soon"})


def test_only_images_whose_moving_tag_differs_are_published() -> None:
    static = BuiltImage("images/static", "latest", "sha256:" + "a" * 64, Path("l1"))
    nonroot = BuiltImage("images/static", "nonroot", "sha256:" + "b" * 64, Path("l2"))
    registry = Destination("ghcr.io/acme")
    current = {"latest": static.digest, "nonroot": "sha256:" + "c" * 64}
    steps = plan_night([static, nonroot], [registry], lambda dest, image: current.get(image.tag), DAY)
    assert [(s.image.tag, s.publish, s.tags) for s in steps] == [
        ("latest", False, ("20240131", "latest")),
        ("nonroot", True, ("nonroot-20240131", "nonroot")),
    ]
    assert render_plan(steps) == (
        f"unchanged ghcr.io/acme/images/static:latest {static.digest}\n"
        f"publish ghcr.io/acme/images/static:nonroot {nonroot.digest} (was sha256:{'c' * 64}), "
        "tags nonroot-20240131, nonroot\n"
    )
    first = plan_night([static], [registry], lambda dest, image: None, DAY)
    assert first[0].publish and "(was nothing)" in render_plan(first)
