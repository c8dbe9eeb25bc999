"""The image config: runtime settings merged over the base's, rootfs diff_ids and history."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ocibuild.errors import OciBuildError
from ocibuild.oci.platforms import Platform

__all__ = ["ConfigOptions", "HistoryStep", "merge_runtime_config", "build_config"]


@dataclass(frozen=True)
class ConfigOptions:
    """What an image sets over its base; None (or empty) inherits the base's value."""

    entrypoint: Optional[Tuple[str, ...]] = None
    cmd: Optional[Tuple[str, ...]] = None
    env: Tuple[Tuple[str, str], ...] = ()  # ordered; merged over the base's by name
    user: Optional[str] = None
    workdir: Optional[str] = None
    labels: Tuple[Tuple[str, str], ...] = ()
    exposed_ports: Tuple[str, ...] = ()
    stop_signal: Optional[str] = None
    volumes: Tuple[str, ...] = ()

    def describe(self) -> str:
        """Short text for an empty_layer history entry."""
        parts = []
        for name, value in (
            ("entrypoint", self.entrypoint),
            ("cmd", self.cmd),
            ("user", self.user),
            ("workdir", self.workdir),
            ("stop_signal", self.stop_signal),
        ):
            if value is not None:
                parts.append(f"{name}={list(value) if isinstance(value, tuple) else value}")
        for name, items in (
            ("env", [k for k, _ in self.env]),
            ("labels", [k for k, _ in self.labels]),
            ("exposed_ports", self.exposed_ports),
            ("volumes", self.volumes),
        ):
            if items:
                parts.append(f"{name}={','.join(items)}")
        return " ".join(parts)


@dataclass(frozen=True)
class HistoryStep:
    created_by: str
    empty_layer: bool = False
    comment: Optional[str] = None


def _format_created(epoch: Optional[int]) -> str:
    """RFC 3339 UTC time of SOURCE_DATE_EPOCH; epoch 0 when none is given (no wall-clock time leaks in)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch or 0))


def _normalize_port(port: str) -> str:
    """`8080` -> `8080/tcp`; checks `PORT[/tcp|udp|sctp]`."""
    number, _, protocol = port.partition("/")
    protocol = protocol or "tcp"
    if not number.isdigit() or not 0 < int(number) < 65536 or protocol not in ("tcp", "udp", "sctp"):
        raise OciBuildError(f"exposed port {port!r} is not `PORT` or `PORT/tcp|udp|sctp` (PORT 1-65535)")
    return f"{int(number)}/{protocol}"


def _merge_env(base: Sequence[str], overrides: Sequence[Tuple[str, str]]) -> List[str]:
    """Base's `NAME=value` entries in their order, values replaced by name; new names appended in order."""
    merged: Dict[str, str] = {}
    for entry in base:
        name, _, value = entry.partition("=")
        merged[name] = value
    for name, value in overrides:
        if not name or "=" in name:
            raise OciBuildError(f"env name {name!r} must be non-empty and contain no `=`")
        merged[name] = value
    return [f"{name}={value}" for name, value in merged.items()]


def merge_runtime_config(base: Mapping[str, Any], options: ConfigOptions) -> Dict[str, Any]:
    """The `config` section: the base's with `options` applied (Dockerfile semantics)."""
    out = copy.deepcopy(dict(base))
    if options.entrypoint is not None:
        out["Entrypoint"] = list(options.entrypoint)
        # As Dockerfile's ENTRYPOINT does: the base's Cmd were arguments for the base's entrypoint.
        if options.cmd is None:
            out.pop("Cmd", None)
    if options.cmd is not None:
        out["Cmd"] = list(options.cmd)
    if options.env or "Env" in out:
        out["Env"] = _merge_env(out.get("Env") or [], options.env)
    if options.user is not None:
        out["User"] = options.user
    if options.workdir is not None:
        out["WorkingDir"] = options.workdir
    if options.stop_signal is not None:
        out["StopSignal"] = options.stop_signal
    if options.labels:
        out["Labels"] = {**(out.get("Labels") or {}), **dict(options.labels)}
    if options.exposed_ports:
        ports = dict(out.get("ExposedPorts") or {})
        ports.update({_normalize_port(p): {} for p in options.exposed_ports})
        out["ExposedPorts"] = ports
    if options.volumes:
        volumes = dict(out.get("Volumes") or {})
        for volume in options.volumes:
            if not volume.startswith("/"):
                raise OciBuildError(f"volume {volume!r} must be an absolute path")
            volumes[volume] = {}
        out["Volumes"] = volumes
    return {k: v for k, v in out.items() if v not in (None, [], {})}


def build_config(
    base: Optional[Mapping[str, Any]],
    platform: Platform,
    options: ConfigOptions,
    diff_ids: Sequence[str],
    steps: Sequence[HistoryStep],
    created: Optional[int],
) -> Dict[str, Any]:
    """The whole config JSON: base's diff_ids and history with the new layers' appended.

    `steps` has one entry per new non-empty layer in order (each matching one of `diff_ids`), plus
    empty_layer entries where the caller needs them.
    """
    timestamp = _format_created(created)
    base = base or {}
    history = copy.deepcopy(list(base.get("history") or []))
    for step in steps:
        entry: Dict[str, Any] = {"created": timestamp, "created_by": step.created_by}
        if step.empty_layer:
            entry["empty_layer"] = True
        if step.comment:
            entry["comment"] = step.comment
        history.append(entry)
    config: Dict[str, Any] = {
        "created": timestamp,
        "architecture": platform.architecture,
        "os": platform.os,
        "config": merge_runtime_config(base.get("config") or {}, options),
        "rootfs": {
            "type": "layers",
            "diff_ids": list((base.get("rootfs") or {}).get("diff_ids") or []) + list(diff_ids),
        },
        "history": history,
    }
    if platform.variant:
        config["variant"] = platform.variant
    return config
