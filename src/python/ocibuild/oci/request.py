"""The `oci-image` request file: JSON naming the base, the layers and the settings of one image.

Relative paths in it are relative to the request file's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ocibuild.errors import OciBuildError
from ocibuild.oci.config import ConfigOptions
from ocibuild.oci.image import ImageRequest
from ocibuild.oci.layers import load_layer_input
from ocibuild.strictload import load_json

_REQUEST_KEYS = {
    "base",
    "base_name",
    "layers",
    "architectures",
    "config",
    "annotations",
    "created",
    "repository",
    "tag",
}
# 9999-12-31T23:59:59Z: the last time RFC 3339 (four-digit years) can write
MAX_CREATED = 253402300799
_LAYER_KEYS = {"blob", "descriptor", "architecture", "created_by"}
_CONFIG_KEYS = {
    "entrypoint",
    "cmd",
    "env",
    "user",
    "workdir",
    "labels",
    "exposed_ports",
    "stop_signal",
    "volumes",
}


def _unknown(where: str, value: Dict[str, Any], allowed: set) -> None:
    extra = sorted(set(value) - allowed)
    if extra:
        raise OciBuildError(
            f"{where}: unknown key(s) {', '.join(extra)}; allowed: {', '.join(sorted(allowed))}"
        )


def _strings(where: str, value: Any) -> Tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise OciBuildError(f"{where}: must be a list of strings")
    return tuple(value)


def _pairs(where: str, value: Any) -> Tuple[Tuple[str, str], ...]:
    """An ordered mapping: a JSON object, `[name, value]` pairs or `NAME=value` strings."""
    items: List[Tuple[Any, Any]]
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = []
        for item in value:
            if isinstance(item, str) and "=" in item:
                key, _, val = item.partition("=")
                items.append((key, val))
            elif isinstance(item, list) and len(item) == 2:
                items.append((item[0], item[1]))
            else:
                raise OciBuildError(f"{where}: {item!r} is neither `NAME=value` nor a [name, value] pair")
    else:
        raise OciBuildError(f"{where}: must be an object of strings")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in items):
        raise OciBuildError(f"{where}: names and values must be strings")
    return tuple(items)


def _optional_str(where: str, value: Any) -> Optional[str]:
    if value is not None and not isinstance(value, str):
        raise OciBuildError(f"{where}: must be a string")
    return value


def parse_config(value: Any, where: str) -> ConfigOptions:
    if not isinstance(value, dict):
        raise OciBuildError(f"{where}: must be an object")
    _unknown(where, value, _CONFIG_KEYS)
    seq = (
        lambda key: _strings(f"{where}.{key}", value[key]) if value.get(key) is not None else None
    )  # noqa: E731
    return ConfigOptions(
        entrypoint=seq("entrypoint"),
        cmd=seq("cmd"),
        env=_pairs(f"{where}.env", value["env"]) if value.get("env") else (),
        user=_optional_str(f"{where}.user", value.get("user")),
        workdir=_optional_str(f"{where}.workdir", value.get("workdir")),
        labels=_pairs(f"{where}.labels", value["labels"]) if value.get("labels") else (),
        exposed_ports=seq("exposed_ports") or (),
        stop_signal=_optional_str(f"{where}.stop_signal", value.get("stop_signal")),
        volumes=seq("volumes") or (),
    )


def load_request(path: Path) -> ImageRequest:
    """Parse and check the request, verifying every layer blob against its descriptor."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError) as e:  # ValueError: not UTF-8
        raise OciBuildError(f"{path}: cannot read the request ({e})") from None
    request = load_json(text, str(path))  # a duplicate key is an error naming it and its line
    if not isinstance(request, dict):
        raise OciBuildError(f"{path}: the request must be a JSON object")
    where = str(path)
    _unknown(where, request, _REQUEST_KEYS)
    root = path.parent
    for key in ("repository", "tag"):
        if not isinstance(request.get(key), str):
            raise OciBuildError(f"{where}: `{key}` must be a string")

    raw_layers = request.get("layers")
    if raw_layers is None:
        raw_layers = []
    if not isinstance(raw_layers, list):
        raise OciBuildError(f"{where}: `layers` must be a list of {{blob, descriptor}} objects")
    layers = []
    for i, layer in enumerate(raw_layers):
        lw = f"{where} layers[{i}]"
        if (
            not isinstance(layer, dict)
            or not isinstance(layer.get("blob"), str)
            or not isinstance(layer.get("descriptor"), str)
        ):
            raise OciBuildError(f"{lw}: needs string `blob` and `descriptor` paths")
        _unknown(lw, layer, _LAYER_KEYS)
        layers.append(
            load_layer_input(
                root / layer["blob"],
                root / layer["descriptor"],
                _optional_str(f"{lw}.architecture", layer.get("architecture")),
                _optional_str(f"{lw}.created_by", layer.get("created_by")) or "",
            )
        )
    created = request.get("created")
    if created is not None and (
        not isinstance(created, int) or isinstance(created, bool) or not 0 <= created <= MAX_CREATED
    ):
        raise OciBuildError(
            f"{where}: `created` must be a non-negative integer (SOURCE_DATE_EPOCH) up to {MAX_CREATED} "
            "(year 9999) or null"
        )
    base = _optional_str(f"{where}.base", request.get("base"))
    architectures = request.get("architectures")
    return ImageRequest(
        repository=request["repository"],
        tag=request["tag"],
        layers=tuple(layers),
        config=parse_config(
            request["config"] if request.get("config") is not None else {}, f"{where} config"
        ),
        base=root / base if base else None,
        base_name=_optional_str(f"{where}.base_name", request.get("base_name")),
        architectures=_strings(f"{where}.architectures", architectures)
        if architectures is not None
        else None,
        annotations=_pairs(f"{where}.annotations", request["annotations"])
        if request.get("annotations") is not None
        else (),
        created=created,
    )
