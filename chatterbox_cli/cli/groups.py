"""Option groups: a set of options several commands share is one frozen dataclass whose fields
are the options' `Annotated` aliases. A command takes the group as one parameter; `grouped`
spreads its fields into the command's options for Typer (one definition, one help text) and
packs what the user gave back into the dataclass before the command runs."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable


def grouped(fn: Callable) -> Callable:
    """`fn` with every parameter annotated by an option group spread into its options."""
    signature = inspect.signature(fn, eval_str=True)
    params: list[inspect.Parameter] = []
    groups: dict[str, tuple[type, list[str]]] = {}
    for param in signature.parameters.values():
        cls = param.annotation
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            params.append(param.replace(kind=inspect.Parameter.KEYWORD_ONLY))
            continue
        hints = typing.get_type_hints(cls, include_extras=True)
        names = []
        for field in dataclasses.fields(cls):
            params.append(
                inspect.Parameter(
                    field.name,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=field.default,
                    annotation=hints[field.name],
                )
            )
            names.append(field.name)
        groups[param.name] = (cls, names)
    seen = [p.name for p in params]
    twice = {n for n in seen if seen.count(n) > 1}
    if twice:
        raise TypeError(f"{fn.__name__}: options defined twice: {', '.join(sorted(twice))}")

    @functools.wraps(fn)
    def wrapper(**given):
        for name, (cls, names) in groups.items():
            given[name] = cls(**{n: given.pop(n) for n in names if n in given})
        return fn(**given)

    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper
