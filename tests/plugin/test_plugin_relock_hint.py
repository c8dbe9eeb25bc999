"""The core says what is wrong with a lock ("re-lock the resolve"); the plugin adds the Pants command."""

from __future__ import annotations

from ocibuild.contract import RELOCK
from pants.util.docutil import bin_name
from pants_oci.util_rules.ocibuild_process import relock_hint


def test_the_hint_names_the_pants_command() -> None:
    message = f"img/apko.lock.json: package musl: malformed size; {RELOCK} to rewrite the lock"
    assert relock_hint(message) == f"{message}: run `{bin_name()} generate-lockfiles`."
    assert relock_hint(f"a is stale; {RELOCK}.", "static") == (
        f"a is stale; {RELOCK}: run `{bin_name()} generate-lockfiles --resolve=static`."
    )


def test_other_messages_are_left_alone() -> None:
    assert relock_hint("img/app: the layer is not valid gzip") == "img/app: the layer is not valid gzip"
