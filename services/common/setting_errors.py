"""Settings errors as a caller can act on them: one line per bad variable, naming it, what it
must be and what it was (`SAYIT_DIRECT_SLOTS must be >= 0; got -1`)."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import ValidationError
from pydantic_core import ErrorDetails

if TYPE_CHECKING:
    from services.common.settings import Settings

SETTING_ERROR = "sayit_setting"

_LIMITS = {
    "greater_than_equal": ("ge", ">="),
    "greater_than": ("gt", ">"),
    "less_than_equal": ("le", "<="),
    "less_than": ("lt", "<"),
}
_KINDS = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "finite_number": "a finite number",
    "bool_parsing": "true or false (1/0, yes/no, on/off)",
}


def describe(cls: type[Settings], error: ValidationError, environ: Mapping[str, str]) -> str:
    """One line per bad variable: its name, what it must be, what it was."""
    given = {k.upper(): v.strip() for k, v in environ.items()}
    lines = dict.fromkeys(_problem(cls, detail, given) for detail in error.errors())
    return "\n".join(lines)


def _problem(cls: type[Settings], detail: ErrorDetails, given: Mapping[str, str]) -> str:
    kind, ctx = detail["type"], detail.get("ctx") or {}
    if not detail["loc"] or detail["loc"][0] not in cls.model_fields:
        # A check of several variables (model_validator): its message names them.
        return str(ctx.get("message", detail["msg"]))
    name = str(detail["loc"][0])
    var = cls.env_name(name)
    value = given.get(var, detail["input"])
    if kind == SETTING_ERROR:
        message = str(ctx["message"])
        text = f"{var}{'' if message.startswith(':') else ' '}{message}"
        return f"{text}; got {value!r}" if ctx.get("show_value", True) else text
    if kind in _LIMITS and len(detail["loc"]) == 1:
        key, op = _LIMITS[kind]
        return f"{var} must be {op} {ctx[key]}; got {_number(cls, name, detail['input'])}"
    if kind in _KINDS and len(detail["loc"]) == 1:
        return f"{var} must be {_KINDS[kind]}; got {value!r}"
    if kind == "literal_error":
        choices = ", ".join(map(str, _literal_choices(cls, name)))
        return f"{var} must be one of {choices}; got {value!r}"
    return f"{var}: {detail['msg']}; got {value!r}"


def _annotation_args(cls: type[Settings], name: str) -> Iterator[Any]:
    """A field's type, and each member of a union (`int | None`), without Annotated."""

    def bare(annotation: Any) -> Any:
        while typing.get_origin(annotation) is Annotated:
            annotation = typing.get_args(annotation)[0]
        return annotation

    annotation = bare(cls.model_fields[name].annotation)
    yield annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        yield from map(bare, typing.get_args(annotation))


def _number(cls: type[Settings], name: str, raw: Any) -> int | float:
    if int in _annotation_args(cls, name):
        return int(raw)
    return float(raw)


def _literal_choices(cls: type[Settings], name: str) -> tuple[Any, ...]:
    for arg in _annotation_args(cls, name):
        if typing.get_origin(arg) is Literal:
            return typing.get_args(arg)
    return ()
