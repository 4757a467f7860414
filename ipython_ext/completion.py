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
            if action.choices:
                return [str(c) for c in action.choices]
            return self.values(op, action, parts, symbol)
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

    def values(self, op: Any, action: Any, parts: list[str], symbol: str) -> list[str]:
        """Values of a flag from what the tool knows: GPU names, sort fields and columns, regions
        (names and ids), models and GPU types from templates, NeoLink SKUs. A comma-separated value
        completes its last part."""
        dest = action.dest
        provider = self._provider(op, parts)
        if hasattr(action.type, "allowed"):  # --provider a,b
            found = list(action.type.allowed)
        elif dest == "gpu":
            from gpu_tools.gpus import GPU_MEMORY_GB

            found = list(GPU_MEMORY_GB)
        elif dest in ("sort", "columns"):
            found = self._fields(op)
            if dest == "sort" and symbol.startswith("-"):
                found = ["-" + f for f in found]
        elif dest == "region":
            found = self._ask(
                ("regions", provider or "*"),
                "list_regions",
                {"provider": provider} if provider else {},
                lambda r: [v for i in r.items for v in (i.name, i.region_id)],
            )
        elif dest in ("model_name", "gpu_type", "template"):
            key = {"model_name": "name", "template": "name", "gpu_type": "gpu_types"}[dest]
            found = self._ask(
                ("templates", f"{provider or '*'}:{key}"),
                "list_templates",
                {"provider": provider} if provider else {},
                lambda r: [v for i in r.items for v in (getattr(i, key) if key == "gpu_types" else [i.name])],
            )
        elif dest in ("gpu_sku_id", "offer_id", "hardware_id", "flavor_id"):
            found = self._ask(
                ("offers", provider or "*"),
                "list_offers",
                {"provider": provider} if provider else {},
                lambda r: [i.offer_id for i in r.items],
            )
        else:
            return []
        found = [f'"{v}"' if " " in v else v for v in found]
        if "," in symbol and dest in ("columns", "provider"):
            head = symbol.rsplit(",", 1)[0] + ","
            return [head + v for v in found]
        return found

    def _provider(self, op: Any, parts: list[str]) -> str | None:
        """The provider this line is about: the operation's own, a positional or --provider."""
        if getattr(op, "provider", None):
            return op.provider
        from gpu_tools.providers import ADAPTERS

        for i, word in enumerate(parts[1:], 1):
            if word in ADAPTERS and (parts[i - 1] == "--provider" or not parts[i - 1].startswith("-")):
                return word
        return None

    def _fields(self, op: Any) -> list[str]:
        from ipython_ext.magics import _item_model
        from ipython_ext.render import all_columns, default_columns

        model = _item_model(op)
        if model is None:
            return []
        return list(dict.fromkeys(c.name for c in [*default_columns(model), *all_columns(model)]))

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
        typed = word.lower().lstrip("\"'")
        hits = [f for f in found if f.lower().lstrip("\"'").startswith(typed)]
        return {
            "completions": [SimpleCompletion(text=h) for h in hits],
            "suppress": bool(hits),
            "matched_fragment": word,
        }

    return match
