"""apk's `L:` field as an SPDX license expression that SPDX validators (spdx-tools) accept.

abuild takes `license=` verbatim, so `L:` is usually an SPDX expression (`MIT AND BSD-2-Clause`,
`ISC AND ( BSD-3-Clause OR MIT )`, `GPL-3.0-or-later WITH OpenSSL-Exception`), sometimes a bare
list of identifiers (`MIT BSD`, read as AND: each applies), with lowercase operators, or with
names that are not on the SPDX list (`Public-Domain`, `custom`). What is on the list keeps its
canonical spelling; anything else becomes `LicenseRef-<name>`, declared with the original text
(SPDX requires every LicenseRef used to be declared); text that is no expression at all
(unbalanced parentheses, a dangling operator) is NOASSERTION, and `inexact` says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Union

from ocibuild.sbom.spdx_license_ids import EXCEPTION_IDS, LICENSE_IDS

NOASSERTION = "NOASSERTION"
_LICENSES = {i.lower(): i for i in LICENSE_IDS}
_EXCEPTIONS = {i.lower(): i for i in EXCEPTION_IDS}
_OPERATORS = {"and": "AND", "or": "OR", "with": "WITH"}
_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_NOT_IDSTRING = re.compile(r"[^A-Za-z0-9.-]+")


@dataclass(frozen=True)
class License:
    expression: str  # an SPDX expression, or NOASSERTION
    extracted: Tuple[Tuple[str, str], ...] = ()  # (LicenseRef-id, the L: text it stands for)
    inexact: bool = False  # something of L: is not an SPDX identifier or could not be parsed


class _Malformed(Exception):
    pass


# A parsed expression: a leaf (its SPDX text) or (operator, [operands]).
_Node = Union[str, Tuple[str, List["_Node"]]]


class _Converter:
    def __init__(self, text: str) -> None:
        self.tokens = _TOKEN.findall(text)
        self.pos = 0
        self.refs: Dict[str, str] = {}

    def _peek(self) -> Optional[str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _operator(self) -> Optional[str]:
        token = self._peek()
        return _OPERATORS.get(token.lower()) if token is not None else None

    def expression(self) -> _Node:
        operands = [self._conjunction()]
        while self._operator() == "OR":
            self.pos += 1
            operands.append(self._conjunction())
        return operands[0] if len(operands) == 1 else ("OR", operands)

    def _conjunction(self) -> _Node:
        operands = [self._term()]
        while True:
            op = self._operator()
            if op == "AND":
                self.pos += 1
            elif op is not None or self._peek() in (None, ")"):
                break
            # else: two operands side by side, an apk-style list: each license applies (AND)
            operands.append(self._term())
        return operands[0] if len(operands) == 1 else ("AND", operands)

    def _term(self) -> _Node:
        token = self._peek()
        if token is None or token == ")" or self._operator() is not None:
            raise _Malformed()
        self.pos += 1
        if token == "(":
            inner = self.expression()
            if self._peek() != ")":
                raise _Malformed()
            self.pos += 1
            return inner
        if self._operator() == "WITH":
            self.pos += 1
            exception = self._peek()
            if exception is None or exception in "()" or self._operator() is not None:
                raise _Malformed()
            self.pos += 1
            return self._with(token, exception)
        return self._license(token)

    def _license(self, token: str) -> str:
        canonical = _LICENSES.get(token.lower())
        if canonical is not None:
            return canonical
        if token.endswith("+") and token[:-1].lower() in _LICENSES:  # "GPL-2.0+": or any later version
            return _LICENSES[token[:-1].lower()] + "+"
        return self._ref(token, token)

    def _with(self, token: str, exception: str) -> str:
        license_id = _LICENSES.get(token.lower()) or (
            _LICENSES[token[:-1].lower()] + "+"
            if token.endswith("+") and token[:-1].lower() in _LICENSES
            else None
        )
        exception_id = _EXCEPTIONS.get(exception.lower())
        if license_id is not None and exception_id is not None:
            return f"{license_id} WITH {exception_id}"
        # SPDX 2.3 has no reference form for an unlisted exception: the pair becomes one LicenseRef
        return self._ref(f"{token}-WITH-{exception}", f"{token} WITH {exception}")

    def _ref(self, name: str, text: str) -> str:
        if name.startswith("LicenseRef-"):
            name = name[len("LicenseRef-") :]
        ref = "LicenseRef-" + (_NOT_IDSTRING.sub("-", name).strip("-") or "unknown")
        self.refs.setdefault(ref, text)
        return ref


def _render(node: _Node, parent: Optional[str] = None) -> str:
    if isinstance(node, str):
        return node
    op, operands = node
    text = f" {op} ".join(_render(o, op) for o in operands)
    # AND binds tighter than OR: an OR inside an AND needs parentheses; the rest reads the same without
    return f"({text})" if parent == "AND" and op == "OR" else text


def spdx_license(apk_license: str) -> License:
    """The SPDX expression for an `L:` value (see the module docstring)."""
    if not apk_license.strip():
        return License(NOASSERTION)
    converter = _Converter(apk_license)
    try:
        node = converter.expression()
        if converter.pos != len(converter.tokens):
            raise _Malformed()
    except _Malformed:
        return License(NOASSERTION, inexact=True)
    return License(_render(node), tuple(sorted(converter.refs.items())), inexact=bool(converter.refs))
