"""A synthetic APKINDEX shaped like Alpine's, for scale benchmarks and solver comparisons with apk."""

from __future__ import annotations

import base64
import hashlib
import random
from typing import List, Tuple

ARCH = "x86_64"


def generate_index_text(entries: int, seed: int = 25000) -> Tuple[str, List[str]]:
    """APKINDEX text with `entries` entries, and a 50-package spec that resolves against it.

    Like a real repository: most dependencies go to a core of widely used libraries (a power-law
    choice among earlier packages, so the graph is acyclic), through so: names mostly, some by name
    with a version constraint; some names have a second, newer build; a few packages conflict with
    a name nothing installs, or are pulled in by install_if.
    """
    rng = random.Random(seed)
    blocks: List[str] = []
    names: List[str] = []
    majors: List[int] = []
    kinds = ["lib", "py3-", "perl-", "font-", "", "", "", "lua5.4-"]

    def earlier(i: int) -> int:
        return int(i * rng.random() ** 4)

    while len(blocks) < entries:
        i = len(names)
        name = f"{rng.choice(kinds)}pkg{i}"
        major, minor = rng.randint(0, 30), rng.randint(0, 18)
        names.append(name)
        majors.append(major)
        depends = set()
        for _ in range(rng.randint(0, 5) if i > 20 else 0):
            j = earlier(i)
            style = rng.random()
            if style < 0.6:
                depends.add(f"so:lib{names[j]}.so.{majors[j]}")
            elif style < 0.8:
                depends.add(names[j])
            elif style < 0.9:
                depends.add(f"{names[j]}>=0.1")
            else:
                depends.add(f"pc:{names[j]}")
        if i > 20 and rng.random() < 0.03:
            depends.add(f"!{name}-legacy")
        for build in range(2 if rng.random() < 0.1 else 1):
            if len(blocks) >= entries:
                break
            suffix = rng.choice(["", "", "", "a", "_git20230101", "_p1"])
            version = f"{major}.{minor + build}.{rng.randint(0, 9)}{suffix}-r{rng.randint(0, 5)}"
            provides = [
                f"so:lib{name}.so.{major}={major}.{minor + build}",
                f"pc:{name}={major}.{minor + build}",
            ]
            if rng.random() < 0.3:
                provides.append(f"cmd:{name}={version}")
            digest = base64.b64encode(hashlib.sha1(f"{name}-{version}".encode()).digest()).decode()
            fields = [
                f"C:Q1{digest}",
                f"P:{name}",
                f"V:{version}",
                f"A:{ARCH}",
                f"S:{rng.randint(1000, 5_000_000)}",
                f"I:{rng.randint(4096, 20_000_000)}",
                f"T:{name} generated for the index benchmark",
                f"U:https://example.org/{name}",
                "L:MIT",
                f"o:{name}",
                "m:Bench <bench@example.org>",
                f"t:{1700000000 + i}",
                "c:0123456789abcdef0123456789abcdef01234567",
            ]
            if depends:
                fields.append("D:" + " ".join(sorted(depends)))
            fields.append("p:" + " ".join(provides))
            blocks.append("\n".join(fields))
    picker = random.Random(seed + 1)
    spec = sorted({names[k] for k in picker.sample(range(len(names) // 2, len(names)), 50)})
    return "".join(b + "\n\n" for b in blocks), spec
