"""What a night publishes: each built image against what every registry has under its moving tag.

An image whose digest the registry already has under the moving tag is "unchanged" there and
nothing is pushed; otherwise it is pushed with two tags, the dated one first and the moving one
last (consumers of `latest` never see a tag pointing at a half-pushed image)."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, List, Mapping, Optional, Sequence, Tuple

from ocibuild.contract import ImageMetadata
from ocibuild.errors import OciBuildError

__all__ = [
    "BuiltImage",
    "Destination",
    "Step",
    "build_date",
    "date_tag",
    "read_built_images",
    "plan_night",
    "render_plan",
]

MOVING_TAG_DEFAULT = "latest"


@dataclass(frozen=True)
class BuiltImage:
    repository: str  # e.g. images/static
    tag: str  # the moving tag: `latest`, `nonroot`
    digest: str
    layout: Path

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True)
class Destination:
    registry: str  # host[:port][/path]
    insecure: bool = False

    def repository(self, image: BuiltImage) -> str:
        return f"{self.registry}/{image.repository}"


@dataclass(frozen=True)
class Step:
    image: BuiltImage
    destination: Destination
    current: Optional[str]  # what the registry has under the moving tag, None: nothing
    tags: Tuple[str, ...]  # in the order they are moved: dated first, moving last

    @property
    def publish(self) -> bool:
        return self.current != self.image.digest


def build_date(environ: Optional[Mapping[str, str]] = None) -> datetime.date:
    """The night's date (UTC): from SOURCE_DATE_EPOCH when set, else the clock."""
    env = os.environ if environ is None else environ
    text = env.get("SOURCE_DATE_EPOCH")
    if text:
        try:
            epoch = int(text)
        except ValueError:
            raise OciBuildError(
                f"SOURCE_DATE_EPOCH={text!r} is not a number of seconds: fix or unset it"
            ) from None
        return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).date()
    return datetime.datetime.now(datetime.timezone.utc).date()


def date_tag(moving_tag: str, day: datetime.date) -> str:
    """`latest` -> `20240131`; another moving tag keeps its name in front: `nonroot-20240131`, so
    the variants of one repository get distinct dated tags."""
    stamp = day.strftime("%Y%m%d")
    return stamp if moving_tag == MOVING_TAG_DEFAULT else f"{moving_tag}-{stamp}"


def read_built_images(image_jsons: Iterable[Path]) -> List[BuiltImage]:
    images = []
    for path in sorted(image_jsons):
        metadata = ImageMetadata.from_json(path.read_bytes(), str(path))
        images.append(
            BuiltImage(metadata.repository, metadata.tag, metadata.digest, path.parent / metadata.layout)
        )
    return images


def plan_night(
    images: Sequence[BuiltImage],
    destinations: Sequence[Destination],
    current_digest: Callable[[Destination, BuiltImage], Optional[str]],
    day: datetime.date,
) -> List[Step]:
    """One step per image and registry; `current_digest` asks the registry (a HEAD of the tag)."""
    return [
        Step(image, dest, current_digest(dest, image), (date_tag(image.tag, day), image.tag))
        for image in images
        for dest in destinations
    ]


def render_plan(steps: Sequence[Step]) -> str:
    lines = []
    for step in steps:
        where = f"{step.destination.repository(step.image)}:{step.image.tag}"
        if step.publish:
            was = step.current or "nothing"
            lines.append(f"publish {where} {step.image.digest} (was {was}), tags {', '.join(step.tags)}")
        else:
            lines.append(f"unchanged {where} {step.image.digest}")
    return "\n".join(lines) + "\n"
