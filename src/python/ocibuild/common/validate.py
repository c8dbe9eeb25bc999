"""The one validator of parsed JSON/YAML input: a frozen dataclass is its schema.

`decode(Cls, value, where)` checks a value parsed by ocibuild.strictload against Cls's annotated
fields and builds it; `encode(obj)` is the inverse. Errors are one line naming `where` and the path
of the offending key (e.g. request.json: `config.env` must be ...).

Supported field types: str, NonEmptyStr (a str that must not be ""), int, bool, float, Optional[T],
Tuple[T, ...], nested dataclasses, and `Tuple[Tuple[str, T], ...]`, an ordered mapping written as a
JSON object. A field with a default may
be missing (null means the default for Optional fields); unknown keys are errors unless the class
sets `extra_keys_ignored = True` (a format other tools add keys to). A record's optional
`invalid_reason()` returns what is wrong beyond types (a range, a required pairing), or None; or a
`(key, problem)` pair, so that the error names that key's path (`users[0].uid` is not ...).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Dict, Optional, Sequence, Tuple, Type, TypeVar

from ocibuild.errors import OciBuildError

__all__ = [
    "NonEmptyStr",
    "decode",
    "encode",
    "field_names",
    "first_problem",
]

T = TypeVar("T")

_NoneType = type(None)

NonEmptyStr = typing.NewType("NonEmptyStr", str)  # a field's type: a string other than ""


def field_names(cls: type) -> Tuple[str, ...]:
    """The JSON keys of a record class, in declaration order."""
    return tuple(f.name for f in dataclasses.fields(cls))


def first_problem(checks: Sequence[Tuple[str, Optional[str]]]) -> Optional[Tuple[str, str]]:
    """The first (key, problem) of `checks` that has a problem: an invalid_reason() of many keys."""
    return next(((key, problem) for key, problem in checks if problem), None)


def decode(cls: Type[T], value: Any, where: str) -> T:
    """`value` (parsed JSON/YAML) as a `cls`; OciBuildError naming `where` if it does not fit."""
    return typing.cast(T, _decode(cls, value, where, ""))


def encode(obj: Any) -> Any:
    """A record as plain JSON values, by its field types: its keys sorted, mappings as objects in
    their own order."""
    return _encode(type(obj), obj)


def _encode(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        hints = typing.get_type_hints(type(value))
        names = sorted(f.name for f in dataclasses.fields(value))  # byte-stable: a record's keys sorted
        return {name: _encode(hints[name], getattr(value, name)) for name in names}
    if typing.get_origin(tp) is typing.Union:
        (tp,) = [a for a in typing.get_args(tp) if a is not _NoneType]
    value_type = _mapping_value_type(tp)
    if value_type is not None:
        return {k: _encode(value_type, v) for k, v in value}
    if isinstance(value, tuple):
        args = typing.get_args(tp)
        item_type = args[0] if args else Any
        return [_encode(item_type, item) for item in value]
    return value


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _fail(where: str, path: str, problem: str) -> OciBuildError:
    """`where: `config.env` must be ...`, or `where: problem` for the whole document."""
    return OciBuildError(f"{where}: `{path}` {problem}" if path else f"{where}: {problem}")


_NAMES = {str: ("a string", "strings"), int: ("an integer", "integers"), bool: ("true or false", "booleans")}


def _describe(tp: Any, plural: bool = False) -> str:
    if tp in _NAMES:
        return _NAMES[tp][plural]
    if tp is float:
        return "numbers" if plural else "a number"
    if tp is NonEmptyStr:
        return "non-empty strings" if plural else "a non-empty string"
    if typing.get_origin(tp) is typing.Union:
        return " or ".join(
            _describe(a, plural) if a is not _NoneType else "null" for a in typing.get_args(tp)
        )
    value_type = _mapping_value_type(tp)
    if value_type is not None:
        return ("objects" if plural else "an object") + f" of {_describe(value_type, True)}"
    if typing.get_origin(tp) is tuple:
        return ("lists" if plural else "a list") + f" of {_describe(typing.get_args(tp)[0], True)}"
    return "objects" if plural else "an object"


def _mapping_value_type(tp: Any) -> Any:
    """T for `Tuple[Tuple[str, T], ...]`, else None."""
    if typing.get_origin(tp) is not tuple:
        return None
    args = typing.get_args(tp)
    if len(args) != 2 or args[1] is not Ellipsis:
        return None
    inner = args[0]
    inner_args = typing.get_args(inner)
    if typing.get_origin(inner) is tuple and len(inner_args) == 2 and inner_args[0] is str:
        return inner_args[1]
    return None


def _decode(tp: Any, value: Any, where: str, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        args = typing.get_args(tp)
        if value is None and _NoneType in args:
            return None
        (inner,) = [a for a in args if a is not _NoneType]
        return _decode(inner, value, where, path)
    if dataclasses.is_dataclass(tp):
        return _decode_record(tp, value, where, path)
    value_type = _mapping_value_type(tp)
    if value_type is not None:
        return _decode_mapping(tp, value_type, value, where, path)
    if origin is tuple:
        (item_type, _) = typing.get_args(tp)
        if not isinstance(value, list):
            raise _fail(where, path, f"must be {_describe(tp)}, got {value!r}")
        return tuple(_decode(item_type, item, where, f"{path}[{i}]") for i, item in enumerate(value))
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is NonEmptyStr and isinstance(value, str) and value:
        return value
    if tp in (str, int, bool) and isinstance(value, tp) and (tp is bool or not isinstance(value, bool)):
        return value
    raise _fail(where, path, f"must be {_describe(tp)}, got {value!r}")


def _decode_mapping(tp: Any, value_type: Any, value: Any, where: str, path: str) -> Any:
    """An object (its order kept); for string values also `[name, value]` pairs or `NAME=value`."""
    items: list
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list) and value_type is str:
        items = []
        for item in value:
            if isinstance(item, str) and "=" in item:
                key, _, val = item.partition("=")
                items.append((key, val))
            elif isinstance(item, list) and len(item) == 2:
                items.append((item[0], item[1]))
            else:
                raise _fail(where, path, f"has {item!r}, neither `NAME=value` nor a [name, value] pair")
    else:
        raise _fail(where, path, f"must be {_describe(tp)}, got {value!r}")
    out = []
    for key, item in items:
        if not isinstance(key, str):
            raise _fail(where, path, f"has a name that is not a string: {key!r}")
        out.append((key, _decode(value_type, item, where, _at(path, key))))
    return tuple(out)


def _decode_record(cls: type, value: Any, where: str, path: str) -> Any:
    if not isinstance(value, dict):
        raise _fail(where, path, f"must be an object, got {value!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if not getattr(cls, "extra_keys_ignored", False):
        extra = sorted(str(k) for k in value if k not in fields)
        if extra:
            raise _fail(
                where, path, f"has unknown key(s) {', '.join(extra)}; allowed: {', '.join(sorted(fields))}"
            )
    hints = typing.get_type_hints(cls)
    kwargs: Dict[str, Any] = {}
    for name, f in fields.items():
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        raw = value.get(name)
        if raw is None and name not in value and not has_default:
            raise _fail(where, _at(path, name), f"is required ({_describe(hints[name])})")
        if raw is None and has_default and not _optional(hints[name]):
            continue  # null or missing: the default
        kwargs[name] = _decode(hints[name], raw, where, _at(path, name))
    record = cls(**kwargs)
    check = getattr(record, "invalid_reason", None)  # checks across fields, e.g. ranges
    problem = check() if check is not None else None
    if isinstance(problem, tuple):
        key, problem = problem
        path = _at(path, key)
    if problem:
        raise _fail(where, path, problem)
    return record


def _optional(tp: Any) -> bool:
    return typing.get_origin(tp) is typing.Union and _NoneType in typing.get_args(tp)
