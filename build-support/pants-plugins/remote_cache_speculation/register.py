"""A CI-only Pants backend (pants.ci.toml): the plugin's remote-cache speculation delay for every Process.

Pants 2.17 has no option for `remote_cache_speculation_delay_millis`, only a per-Process field with
a default of 0 ms: the engine starts the local run as soon as the cache lookup is sent
(process_execution/remote/src/remote_cache.rs:320-341), so on a warm cache some of Pants' own
Processes (Go compiles, PEX builds) are spawned and dropped, and a fast one can even finish before
the hit and be used instead. The plugin's Processes carry a delay; this gives Pants' own the same
default. The delay is not part of any cache key (process_execution/src/lib.rs,
make_execute_request) and only applies while a lookup is pending: a miss starts the local run at once.
"""

from __future__ import annotations

from typing import Any

from pants.engine.process import Process
from pants_oci.util_rules.ocibuild_process import REMOTE_CACHE_SPECULATION_DELAY_MILLIS

_process_init = Process.__init__


def _init_with_speculation_delay(self: Process, *args: Any, **kwargs: Any) -> None:
    kwargs.setdefault("remote_cache_speculation_delay_millis", REMOTE_CACHE_SPECULATION_DELAY_MILLIS)
    _process_init(self, *args, **kwargs)


if Process.__init__.__name__ != _init_with_speculation_delay.__name__:  # once, if imported twice
    Process.__init__ = _init_with_speculation_delay  # type: ignore[assignment]


def rules():
    return []
