"""`{var}` expansion: notebook values put into `%gpu` arguments, each value one argument."""

from __future__ import annotations

import argparse
import re
import shlex
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError

# `{name}`, `{name.attr}`, `{name[0]}`, `{name["key"]}`; `{{...}}` is a literal `{...}`.
_EXPR = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[-?\d+\]|\[\"[^\"\]]*\"\]|\['[^'\]]*'\])*"
_VARIABLE = re.compile(r"\{\{(" + _EXPR + r")\}\}|\{(" + _EXPR + r")\}")
_STEP = re.compile(r"\.([A-Za-z_]\w*)|\[(-?\d+)\]|\[\"([^\"\]]*)\"\]|\['([^'\]]*)'\]")


@dataclass
class Token:
    text: str
    literal_prefix: str  # the text before the first {variable} in this token (all of it if none)
    from_variable: bool


def resolve(expr: str, namespace: dict[str, Any]) -> str:
    """The text of `name`, `name.attr`, `name[0]`, `name["key"]` in the notebook's namespace."""
    root = re.match(r"[A-Za-z_]\w*", expr)
    if root is None:
        raise RuntimeError("internal error: expected root is not None")
    if root.group(0) not in namespace:
        raise UsageError(f"%gpu: {{{expr}}}: no variable named {root.group(0)!r}; nothing was sent.")
    obj = namespace[root.group(0)]
    for step in _STEP.finditer(expr, root.end()):
        attr, index, key2, key1 = step.groups()
        try:
            if attr is not None:
                obj = getattr(obj, attr)
            elif index is not None:
                obj = obj[int(index)]
            else:
                obj = obj[key2 if key2 is not None else key1]
        except (AttributeError, LookupError, TypeError) as exc:
            raise UsageError(f"%gpu: {{{expr}}} cannot be resolved ({exc}); nothing was sent.") from None
    if obj is None:
        raise UsageError(f"%gpu: {{{expr}}} is None; nothing was sent.")
    return str(obj)


def tokenize(text: str, namespace: dict[str, Any], comments: bool = False) -> list[Token]:
    """Split like a shell, then put each {variable}'s value inside the one token it was written in.

    Values are substituted after splitting, so quotes, spaces or `--yes` in a value never make a
    second argument or a flag."""
    values: list[str] = []
    literals: list[str] = []

    def mark(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            literals.append("{" + match.group(1) + "}")
            return f"\x01{len(literals) - 1}\x01"
        values.append(resolve(match.group(2), namespace))
        return f"\x00{len(values) - 1}\x00"

    marked = _VARIABLE.sub(mark, text)
    try:
        parts = shlex.split(marked, comments=comments)
    except ValueError as exc:
        raise UsageError(f"%gpu: {exc}") from None
    tokens = []
    for part in parts:
        prefix = part.split("\x00", 1)[0]
        restored = re.sub(r"\x00(\d+)\x00", lambda m: values[int(m.group(1))], part)
        restored = re.sub(r"\x01(\d+)\x01", lambda m: literals[int(m.group(1))], restored)
        prefix = re.sub(r"\x01(\d+)\x01", lambda m: literals[int(m.group(1))], prefix)
        tokens.append(Token(restored, prefix, "\x00" in part))
    return tokens


def argv_of(tokens: list[Token], parser: argparse.ArgumentParser) -> list[str]:
    """Arguments for argparse in which a variable's text can only ever be one argument value."""
    argv: list[str] = []
    for token in tokens:
        prev = argv[-1] if argv else ""
        action = parser._option_string_actions.get(prev)
        takes_value = action is not None and action.nargs != 0 and "=" not in prev
        if not token.from_variable:
            if takes_value and token.text.startswith("-") and token.text not in parser._option_string_actions:
                argv[-1] = f"{prev}={token.text}"  # `--sort -usd_per_hour`: a value, not a flag
            else:
                argv.append(token.text)
            continue
        if token.literal_prefix.startswith("-"):
            if "=" not in token.literal_prefix:
                raise UsageError(
                    f"%gpu: a {{variable}} cannot make a flag ({token.text!r}); nothing was sent."
                )
            argv.append(token.text)  # --flag={value}
            continue
        if takes_value:
            argv[-1] = f"{prev}={token.text}" if prev.startswith("--") else prev + token.text
            continue
        if token.text.startswith("-"):
            raise UsageError(
                f"%gpu: a {{variable}}'s value {token.text!r} would read as a flag; pass it to an option "
                "(e.g. --name {var}); nothing was sent."
            )
        argv.append(token.text)
    return argv
