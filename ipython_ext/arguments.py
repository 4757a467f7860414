"""The `%gpu` argument parsers, built from each operation's input model."""

from __future__ import annotations

import argparse
import difflib
import re
import sys
import types
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, get_args, get_origin

from IPython.core.error import UsageError

if TYPE_CHECKING:
    from gpu_tools.operations import Operation

YES_FLAGS = ("--yes", "-y")
POSITIONAL_NAMES = ("name",)  # positional in some input models; always also a --flag here


class _HelpShown(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one-line UsageErrors (with a "did you mean") instead of exiting."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_abbrev=False, **kwargs)

    def error(self, message: str) -> typing.NoReturn:
        hint = ""
        unknown = re.match(r"unrecognized arguments: (\S+)", message)
        if unknown:
            flags = [s for a in self._actions for s in a.option_strings if s.startswith("--")]
            close = difflib.get_close_matches(unknown.group(1).split("=")[0], flags, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
        raise UsageError(f"%{self.prog}: {message}{hint} (see %{self.prog} -h)")

    def exit(self, status: int = 0, message: str | None = None) -> typing.NoReturn:
        if message:
            print(message, file=sys.stderr)
        raise _HelpShown


def _unwrap(annotation: Any) -> tuple[Any, bool, list[Any]]:
    """(base type, optional?, metadata) of `X | None`, `Annotated[X, ...]` or
    `Annotated[X, ...] | None`: the base type decides how a `%gpu` argument is parsed, the metadata
    (pydantic leaves it in the type of an optional field) which choices it has."""
    optional, metadata = False, []
    while True:
        if get_origin(annotation) is Annotated:
            metadata += annotation.__metadata__
            annotation = annotation.__origin__
        elif get_origin(annotation) in (typing.Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation, optional, metadata
            annotation, optional = args[0], True
        else:
            return annotation, optional, metadata


def _json_or_list(text: str) -> Any:
    import json

    text = text.strip()
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
    return [part.strip() for part in text.split(",") if part.strip()]


def _choice(choices: list[str]) -> Callable[[str], str]:
    """Case-insensitive choices: `NeBiUs` is `nebius`."""
    by_lower = {str(c).lower(): c for c in choices}

    def convert(text: str) -> str:
        return by_lower.get(text.lower(), text)

    return convert


def _choices(allowed: list[str]) -> Callable[[str], list[str]]:
    """Comma-separated choices, case-insensitive: `sesterce,NetMind`."""
    by_lower = {c.lower(): c for c in allowed}

    def convert(text: str) -> list[str]:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        unknown = [p for p in parts if p.lower() not in by_lower]
        if unknown or not parts:
            raise argparse.ArgumentTypeError(
                f"invalid choice: {', '.join(unknown) or repr(text)} (choose from {', '.join(allowed)})"
            )
        return [by_lower[p.lower()] for p in parts]

    convert.allowed = allowed  # type: ignore[attr-defined]  # what Tab offers
    return convert


def is_listing(op: Operation) -> bool:
    """Reads that return several items take --sort, --columns and --all-columns."""
    fields = getattr(op.output, "model_fields", {})
    return not op.mutating and ("items" in fields or "untracked" in fields)


def build_parser(op: Operation, prog: str, words: Callable[[str], str] = str) -> _Parser:
    """An argparse parser mirroring `op.input`: positional fields, `--flags`, choices, JSON for lists."""
    from gpu_tools.models import choices_of

    first = words(op.description.split(". ")[0].rstrip(".") + ".")
    parser = _Parser(prog=prog, description=first, add_help=True)
    fields = op.input.model_fields
    for name, field in fields.items():
        kind, _, metadata = _unwrap(field.annotation)
        help_text = words(field.description or "").replace("%", "%%")  # argparse %-formats help
        kwargs: dict[str, Any] = {"help": help_text}
        choices = choices_of(kind, [*field.metadata, *metadata])
        listed = choices_of(get_args(kind)[0]) if get_origin(kind) is list and get_args(kind) else None
        if choices is not None:
            kwargs["choices"] = choices
            kwargs["type"] = _choice(choices)
        elif listed is not None:
            allowed = listed
            kwargs["type"] = _choices(allowed)
            kwargs["metavar"] = "A[,B]"
            kwargs["help"] = f"{help_text} ({', '.join(allowed)})"
        elif kind is int:
            kwargs["type"] = int
        elif kind is float:
            kwargs["type"] = float
        elif kind is not str and kind is not bool:
            kwargs["type"] = _json_or_list
            kwargs["metavar"] = "JSON"
        flag = "--" + name.replace("_", "-")
        if name in op.input.positional and name not in POSITIONAL_NAMES:
            parser.add_argument(name, **kwargs)
            continue
        if kind is bool:
            if field.default is True:
                parser.add_argument(
                    "--no-" + name.replace("_", "-"), dest=name, action="store_false", help=help_text
                )
            else:
                parser.add_argument(flag, dest=name, action="store_true", help=help_text)
            continue
        flags = [flag]
        if name == "display_name" and "name" not in fields:
            flags.insert(0, "--name")  # the same flag for a resource's name on every provider
        if name in op.input.positional:  # `NAME` positionally still works, as the provider's own form
            parser.add_argument(
                "_" + name, nargs="?", default=None, metavar=name.upper(), help=argparse.SUPPRESS
            )
            kwargs["default"] = None
        elif field.is_required():
            kwargs["required"] = True
        else:
            kwargs["default"] = None
        parser.add_argument(*flags, dest=name, **kwargs)
    if is_listing(op):
        parser.add_argument("--sort", metavar="FIELD", help="sort by FIELD (-FIELD for descending)")
        parser.add_argument("--columns", metavar="A,B,C", help="the columns to show, in order")
        parser.add_argument("--all-columns", action="store_true", help="show every column")
    parser.add_argument("-o", "--out", metavar="NAME", help="also store the result in the variable NAME")
    if op.mutating:
        parser.add_argument(
            *YES_FLAGS,
            dest="yes",
            action="store_true",
            help="confirm without being asked (you, not an agent)",
        )
    return parser
