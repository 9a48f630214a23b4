"""One loader for every configuration section.

Each section is a frozen dataclass whose fields carry their type, default and a line of
documentation (:func:`setting`); :func:`load_section` builds it from a TOML table, converting
and checking every value by its declared type, and reports every problem of the table at once.
A section may add checks that span fields by defining ``problems(self) -> list[str]``.
The configuration reference is generated from the same classes.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

from devices.errors import BadRequest

S = TypeVar("S")

_MISSING = dataclasses.MISSING


def setting(default: Any = _MISSING, doc: str = "", *,
            default_factory: Any = _MISSING) -> Any:
    """A settings field with its documentation (shown by the configuration reference)."""
    if default_factory is not _MISSING:
        return dataclasses.field(default_factory=default_factory, metadata={"doc": doc})
    return dataclasses.field(default=default, metadata={"doc": doc})


class ConfigError(BadRequest):
    """One or more configuration problems, each a line naming the section and key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems) if len(problems) < 4 else
                         f"{len(problems)} configuration problems:\n  " + "\n  ".join(problems),
                         reason="BAD_CONFIGURATION")
        self.problems = problems


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (tuple, frozenset, list):
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None))
    if dataclasses.is_dataclass(tp):
        return "table"
    return {bool: "boolean", int: "integer", float: "number", str: "string", bytes: "hex string",
            Path: "path"}.get(tp, getattr(tp, "__name__", str(tp)))


def type_name(tp: Any) -> str:
    """How a field's type is described to an operator (the reference, error messages)."""
    return _type_name(tp)


def _convert(tp: Any, value: Any, where: str) -> Any:
    """``value`` (from TOML) as ``tp``; raises ValueError with the operator's words."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ValueError(f"{where} must be one of {', '.join(repr(c) for c in choices)}, "
                             f"not {value!r}")
        return value
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None and len(args) < len(typing.get_args(tp)):
            return None
        errors = []
        for arg in args:
            try:
                return _convert(arg, value, where)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(errors[0])
    if origin in (tuple, frozenset, list):
        if not isinstance(value, list | tuple):
            raise ValueError(f"{where} must be a list")
        item_type = typing.get_args(tp)[0]
        items = [_convert(item_type, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return frozenset(items) if origin is frozenset else tuple(items)
    from_toml = getattr(tp, "from_toml", None)
    if from_toml is not None:
        try:
            return from_toml(value)
        except (TypeError, ValueError, BadRequest) as exc:
            raise ValueError(f"{where}: {exc}") from None
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, Mapping):
            raise ValueError(f"{where} must be a table")
        obj, problems = _build(tp, value, where)
        if problems:  # a nested table's own unknown keys and checks
            raise ValueError("; ".join(problems))
        return obj
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where} must be an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where} must be a number")
        if not math.isfinite(value):
            raise ValueError(f"{where} must be a finite number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a string")
        if "\x00" in value:
            raise ValueError(f"{where} must not contain NUL")
        return value
    if tp is Path:
        return Path(_convert(str, value, where)).expanduser()
    if tp is bytes:
        try:
            return bytes.fromhex(_convert(str, value, where))
        except ValueError:
            raise ValueError(f"{where} must be hex digits") from None
    raise ValueError(f"{where}: unsupported setting type {tp!r}")


def _build(cls: type[S], raw: Mapping[str, Any], where: str) -> tuple[S, list[str]]:
    """The object and every problem found: unknown keys, values not of their type, and the
    section's own checks (run on the values that converted, the rest left at defaults)."""
    problems: list[str] = []
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in sorted(set(raw) - set(known)):
        problems.append(f"{where} {key}: unknown setting")
    values: dict[str, Any] = {}
    for name, f in known.items():
        if name in raw and f.init:
            try:
                values[name] = _convert(hints[name], raw[name], f"{where} {name}")
            except ValueError as exc:
                problems.append(str(exc))
    try:
        obj = cls(**values)
    except (TypeError, ValueError, BadRequest) as exc:
        raise ConfigError([*problems, f"{where}: {exc}"]) from None
    check = getattr(obj, "problems", None)
    if check is not None:
        problems.extend(f"{where} {p}" for p in check())
    return obj, problems


def load_section(cls: type[S], section: str, raw: Mapping[str, Any] | None) -> S:
    """The ``[section]`` table as ``cls``; raises :class:`ConfigError` listing every problem."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError([f"[{section}] must be a table"])
    obj, problems = _build(cls, raw, f"[{section}]")
    if problems:
        raise ConfigError(problems)
    return obj


@dataclasses.dataclass(frozen=True)
class FieldDoc:
    name: str
    type: str
    default: Any
    doc: str


def describe(cls: type) -> list[FieldDoc]:
    """Every field of a settings class: name, type, default and documentation."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.default is not _MISSING:
            default: Any = f.default
        elif f.default_factory is not _MISSING:
            default = f.default_factory()
        else:
            default = None
        out.append(FieldDoc(f.name, type_name(hints[f.name]), default, f.metadata.get("doc", "")))
    return out
