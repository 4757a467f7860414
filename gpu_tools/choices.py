"""Values worth offering while someone types an argument: provider names, GPU models, regions,
template names, and the ids of live resources.

Both fronts can complete from here (the MCP front answers `completion/complete` with it). Answers
must come fast: what the providers know is fetched within a small time budget, kept for a while,
and left out when it does not come in time; what is local (names, the journal) is always there.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from gpu_tools.gpus import GPU_MEMORY_GB
from gpu_tools.providers import ADAPTERS

if TYPE_CHECKING:
    from gpu_tools.context import Context

# The arguments this module can complete.
COMPLETABLE = ("provider", "gpu", "region", "template", "resource_id")
# How long one completion may wait for the providers, and how long their answers are reused.
BUDGET_SECONDS = 2.0
KEEP_SECONDS = 60.0


def providers(tk: Context) -> list[str]:
    """Provider names the policy allows, those with credentials first."""
    allowed = tk.settings.allowed_providers
    names = [n for n in ADAPTERS if allowed is None or n in allowed]
    return sorted(names, key=lambda n: not tk.configured(n))


def live_ids(tk: Context, provider: str | None = None) -> list[str]:
    """Ids of the billable resources the journal says this tool created and has not deleted."""
    return [
        e.resource_id
        for e in tk.journal.live()
        if e.resource_id and (provider is None or e.provider == provider)
    ]


async def _asked(tk: Context, what: str, provider: str | None) -> list[str]:
    """Names the providers give for `what` (regions, templates, resources), within the budget."""
    key = f"choices:{what}:{provider or '*'}"
    hit = tk.recent.get(key)
    if hit is not None and time.monotonic() - hit[0] < KEEP_SECONDS:
        return hit[1]
    fetch: dict[str, Any] = {
        "regions": lambda p: p.list_regions(),
        "templates": lambda p: p.list_templates(),
        "resources": tk.resources,
    }
    field = {"regions": "region_id", "templates": "name", "resources": "resource_id"}[what]
    try:
        items, statuses = await asyncio.wait_for(tk.fan_out(what, provider, fetch[what]), BUDGET_SECONDS)
    except Exception:  # a completion never fails: it offers what is at hand (timeouts included)
        return []
    values = list(dict.fromkeys(str(getattr(item, field)) for item in items))
    if all(s.status in ("ok", "unsupported", "not_configured") for s in statuses):
        tk.recent[key] = (time.monotonic(), values)
    return values


async def choices(
    tk: Context, argument: str, typed: str = "", context: dict[str, str] | None = None
) -> list[str]:
    """Every value for `argument` that matches what was typed so far (case-insensitive), those that
    start with it first. `context` holds arguments already given (a `provider` narrows the rest)."""
    context = context or {}
    provider = context.get("provider")
    if provider not in ADAPTERS:
        provider = None
    if argument == "provider":
        values = providers(tk)
    elif argument == "gpu":
        values = list(GPU_MEMORY_GB)
    elif argument == "region":
        values = await _asked(tk, "regions", provider)
    elif argument == "template":
        values = await _asked(tk, "templates", provider)
    elif argument == "resource_id":
        values = list(
            dict.fromkeys(
                await tk.journal.aio.run(live_ids, tk, provider) + await _asked(tk, "resources", provider)
            )
        )
    else:
        return []
    low = typed.lower()
    first = [v for v in values if v.lower().startswith(low)]
    return first + [v for v in values if low in v.lower() and v not in first]
