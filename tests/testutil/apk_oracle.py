"""Expected resolutions of a real APKINDEX, computed without ocibuild.apk (tarfile + plain dicts), so tests
compare the resolver against an independent reading of the index."""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path
from typing import Dict, List, Sequence, Set

from testutil.tars import member_bytes

_OPS = re.compile("[<>=~]")


def read_apkindex(path: Path) -> Dict[str, Dict[str, List[str]]]:
    """{P: {field letter: values}}; D:/p:/i: split on spaces. tarfile reads the concatenated signature
    and control gzip members as one stream, and APKINDEX is in the control part."""
    with tarfile.open(fileobj=io.BytesIO(Path(path).read_bytes()), mode="r:gz") as tar:
        text = member_bytes(tar, "APKINDEX").decode()
    packages: Dict[str, Dict[str, List[str]]] = {}
    for block in text.strip().split("\n\n"):
        fields: Dict[str, List[str]] = {}
        for line in block.splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.split() if key in ("D", "p", "i") else [value]
        packages[fields["P"][0]] = fields
    return packages


def expected_install_order(index_path: Path, requests: Sequence[str]) -> List[str]:
    """Names needed by `requests` on an index with one build per name and no install_if in play, in
    install order: dependencies first, the smallest ready name first."""
    raw = read_apkindex(index_path)
    provider: Dict[str, str] = {}
    for name, fields in sorted(raw.items()):
        for p in fields.get("p", []):
            provider.setdefault(_OPS.split(p)[0], name)
    provider.update({name: name for name in raw})
    deps: Dict[str, Set[str]] = {}
    todo, seen = list(requests), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        deps[name] = {provider[_OPS.split(d)[0]] for d in raw[name].get("D", []) if not d.startswith("!")} - {
            name
        }
        todo.extend(deps[name])
    order: List[str] = []
    while len(order) < len(seen):
        order.append(min(n for n in seen if n not in order and deps[n] <= set(order)))
    return order
