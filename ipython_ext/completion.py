"""Tab completion for `%gpu`: subcommands, flags, choices, values the tool knows, live resource ids."""

from __future__ import annotations

import re
import time
import types
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

if TYPE_CHECKING:
    from ipython_ext.magics import GpuMagics

CACHE_SECONDS = 30  # how long ids and values asked of providers are reused
ASK_SECONDS = 3  # never wait longer than this for a provider while completing


class Completer:
    """What Tab offers after `%gpu`, given the text before the cursor."""

    def __init__(self, magics: GpuMagics) -> None:
        self.magics = magics
        self._asked: dict[tuple[str, str], tuple[float, list[str]]] = {}

    def clear(self) -> None:
        self._asked.clear()

    def complete(self, before: str, symbol: str) -> list[str]:
        """Subcommands and aliases, flags, choices, provider names and live resource ids where a
        positional expects them."""
        m = self.magics
        body = re.sub(r"^\s*%{0,2}gpu\s*", "", before)
        parts = body.split()
        if not body.endswith(" "):
            parts = parts[:-1]
        if not parts:
            return sorted([*m.subcommands(), "help", "sandbox"])
        if parts[0] == "sandbox":
            return ["--ready-after", "--stop", "--fresh"]
        if parts[0] == "help":
            return sorted(m.subcommands())
        try:
            op = m.operation_for(parts[0])
        except UsageError:
            return []
        parser = m._parser(op)
        flags = sorted(s for a in parser._actions for s in a.option_strings if s.startswith("--"))
        last = parts[-1] if len(parts) > 1 else ""
        action = parser._option_string_actions.get(last)
        if action is not None and action.nargs != 0:
            return [str(c) for c in action.choices] if action.choices else []
        positionals = [a for a in parser._actions if not a.option_strings and a.dest != "help"]
        given = [p for p in parts[1:] if not p.startswith("-")]
        # values of flags are not positionals
        for i, p in enumerate(parts[1:], 1):
            act = parser._option_string_actions.get(parts[i - 1])
            if act is not None and act.nargs != 0 and p in given:
                given.remove(p)
        if len(given) < len(positionals) and not symbol.startswith("-"):
            target = positionals[len(given)]
            if target.choices:
                return [str(c) for c in target.choices]
            if target.dest == "resource_id" and given:
                return self.resource_ids(given[0])
        return flags

    def resource_ids(self, provider: str) -> list[str]:
        """Ids of the provider's resources, asked at most every 30 s and never for longer than 3 s."""
        return self._ask(
            ("ids", provider),
            "list_resources",
            {"provider": provider},
            lambda listing: [r.resource_id for r in listing.items],
        )

    def _ask(self, key: tuple[str, str], op: str, args: dict[str, Any], pick: Any) -> list[str]:
        """`pick(result of op)`, reused for CACHE_SECONDS; [] when the call fails or is slow."""
        hit = self._asked.get(key)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        import asyncio

        m = self.magics
        try:
            result = m.runner.run(asyncio.wait_for(m.toolkit.call(op, args), ASK_SECONDS))
            values = list(dict.fromkeys(str(v) for v in pick(result) if v))
        except Exception:  # completion must never raise: no values is a fine answer
            values = []
        self._asked[key] = (time.monotonic(), values)
        return values


def completion_matcher(magics: GpuMagics) -> Any:
    """An IPython (v2 API) matcher for `%gpu` lines; it suppresses the other matchers there, so Tab
    offers subcommands, flags and values rather than Python names."""
    from IPython.core.completer import CompletionContext, SimpleCompletion, context_matcher

    @context_matcher(identifier="gpu_tools.magic")
    def match(context: CompletionContext) -> Any:
        lines = context.full_text.split("\n")
        row = lines[context.cursor_line] if context.cursor_line < len(lines) else ""
        before = row[: context.cursor_position]
        if not re.match(r"\s*%{1,2}gpu\s", before):
            return {"completions": [], "suppress": False}
        word = before.rsplit(None, 1)[-1] if before and not before[-1].isspace() else ""
        try:
            found = magics.complete(types.SimpleNamespace(text_until_cursor=before, symbol=word))
        except Exception:  # completion must never raise into the prompt
            found = []
        hits = [f for f in found if f.lower().startswith(word.lower())]
        return {
            "completions": [SimpleCompletion(text=h) for h in hits],
            "suppress": bool(hits),
            "matched_fragment": word,
        }

    return match
