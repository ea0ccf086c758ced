"""Typed configs from plain dicts: unknown keys and badly typed values are errors that name them."""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from kdnlp.core.errors import KdnlpError

T = TypeVar("T")


def coerce(value: Any, hint: Any, where: str) -> Any:
    """Checks `value` against the type `hint`, converting what YAML leaves as strings (``5e-5``)."""
    origin = get_origin(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in get_args(hint):
            return None
        errors = []
        for arg in get_args(hint):
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, where)
            except KdnlpError as e:
                errors.append(str(e))
        raise KdnlpError(errors[0] if len(errors) == 1 else f"bad value {value!r} for {where}")
    if origin is Literal:
        if value not in get_args(hint):
            raise KdnlpError(f"bad value {value!r} for {where}; valid: {', '.join(map(str, get_args(hint)))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise KdnlpError(f"bad value {value!r} for {where}: expected a list")
        (item,) = get_args(hint)[:1] or (Any,)
        return [coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise KdnlpError(f"bad value {value!r} for {where}: expected a mapping")
        return dict(value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise KdnlpError(f"bad value {value!r} for {where}: expected true or false")
    if hint in (int, float):
        if isinstance(value, bool):
            raise KdnlpError(f"bad value {value!r} for {where}: expected a number")
        if isinstance(value, str):
            try:
                value = float(value) if hint is float else int(value)
            except ValueError:
                raise KdnlpError(f"bad value {value!r} for {where}: expected {hint.__name__}") from None
        if hint is int and isinstance(value, float):
            if not value.is_integer():
                raise KdnlpError(f"bad value {value!r} for {where}: expected an integer")
            value = int(value)
        if not isinstance(value, (int, float)):
            raise KdnlpError(f"bad value {value!r} for {where}: expected {hint.__name__}")
        return hint(value)
    if hint is str:
        if not isinstance(value, str):
            raise KdnlpError(f"bad value {value!r} for {where}: expected a string")
        return value
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    return value


def from_dict(cls: type[T], data: Any, where: str) -> T:
    """Builds dataclass `cls` from `data`; `where` names the place in error messages (``recipe.student``)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise KdnlpError(f"{where} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise KdnlpError(f"unknown key '{where}.{unknown[0]}'; valid keys: {', '.join(fields)}")
    kwargs = {}
    for name, field in fields.items():
        if name in data:
            kwargs[name] = coerce(data[name], hints[name], f"{where}.{name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise KdnlpError(f"missing key '{where}.{name}'")
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if check is not None:
        check(where)
    return obj


#: The largest seed: numpy's generator, which transformers.set_seed seeds, takes 0 to 2**32 - 1.
MAX_SEED = 2**32 - 1


def parse_seed(value: Any, name: str) -> int:
    """`value` (text or a number) as a seed of the option or setting `name`: a whole number from 0 to MAX_SEED."""
    text = str(value).strip()
    if isinstance(value, bool) or not (text.isascii() and text.isdigit()) or int(text) > MAX_SEED:
        raise KdnlpError(f"bad value '{value}' for {name}: a seed is a whole number from 0 to {MAX_SEED}")
    return int(text)


def first_repeat(items: list) -> Any:
    """The first item of `items` that stands earlier in it too, or None."""
    return next((x for i, x in enumerate(items) if x in items[:i]), None)
