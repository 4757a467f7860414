"""Results as HTML tables in Jupyter and aligned text in a terminal, with a display limit."""

from __future__ import annotations

import html
import json
from typing import Any

from pydantic import BaseModel

from gpu_tools.models import ChatResult, Listing, MutationResult, OrphanReport, Plan, SpendReport

# Preferred columns per item type; other types show their scalar fields in declaration order.
COLUMNS: dict[str, list[str]] = {
    "Offer": [
        "provider",
        "kind",
        "gpu_model",
        "gpu_name",
        "gpu_count",
        "gpu_memory_gb",
        "region",
        "price",
        "currency",
        "usd_per_hour",
        "usd_per_gpu_hour",
        "available",
        "offer_id",
    ],
    "Resource": [
        "provider",
        "kind",
        "resource_id",
        "name",
        "status",
        "raw_status",
        "region",
        "gpu_name",
        "gpu_count",
        "replicas",
        "usd_per_hour",
    ],
    "Template": ["provider", "name", "flavors", "gpu_types", "gpu_counts", "regions"],
    "Region": ["provider", "region_id", "name"],
    "JournalEntry": [
        "id",
        "at",
        "provider",
        "operation",
        "target",
        "outcome",
        "usd_per_hour",
        "resource_id",
        "error",
    ],
    "ProviderInfo": ["name", "title", "configured", "base_url", "capabilities"],
    "SpendLine": [
        "provider",
        "resource_id",
        "name",
        "status",
        "usd_per_hour",
        "hours",
        "accrued_usd",
        "expires_at",
        "tracked",
    ],
    "LiveEntry": ["provider", "resource_id", "name", "created_at", "usd_per_hour", "expires_at"],
}
SKIP = {"details", "sandbox", "body"}
MAX_CELL = 48


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict | BaseModel):
        data = value.model_dump(mode="json", exclude_none=True) if isinstance(value, BaseModel) else value
        return json.dumps(data, separators=(",", ":"), default=str)
    return str(value)


def usd(amount: float) -> str:
    """Dollars with cents, or with four decimals when the amount is under a dollar but not zero."""
    return f"${amount:.4f}" if 0 < abs(amount) < 1 else f"${amount:,.2f}"


def short(text: str) -> str:
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


class ProgressLine:
    """One live status line, updated in place in Jupyter (display_id) and printed in a terminal."""

    def __init__(self, done: float, total: float | None, message: str) -> None:
        self.text = message + (f"  [{done:.0f}/{total:.0f}s]" if total else "")

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f"<code>{html.escape(self.text)}</code>"


class Table:
    def __init__(self, headers: list[str], rows: list[list[str]], note: str | None = None) -> None:
        self.headers, self.rows, self.note = headers, rows, note

    def text(self) -> str:
        rows = [[short(c) for c in r] for r in self.rows]
        widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(self.headers)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        out = [fmt.format(*self.headers), fmt.format(*("-" * w for w in widths))]
        out += [fmt.format(*r).rstrip() for r in rows]
        if self.note:
            out.append(self.note)
        return "\n".join(out)

    def html(self) -> str:
        head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in self.headers)
        body = "".join(
            "<tr>" + "".join(f"<td style='text-align:left'>{html.escape(c)}</td>" for c in r) + "</tr>"
            for r in self.rows
        )
        note = f"<p><em>{html.escape(self.note)}</em></p>" if self.note else ""
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"


def _columns(items: list[BaseModel]) -> list[str]:
    kind = type(items[0]).__name__
    names = COLUMNS.get(kind) or [n for n in type(items[0]).model_fields if n not in SKIP]
    dumps = [i.model_dump() for i in items]
    return [n for n in names if any(d.get(n) not in (None, "", [], {}) for d in dumps)]


def listing_table(result: Listing[Any], limit: int) -> Table:
    items = result.items
    shown = items[:limit]
    note_parts = []
    if len(items) > limit:
        note_parts.append(f"{len(shown)} of {result.total} shown")
    elif result.total > len(items):
        note_parts.append(f"{len(items)} of {result.total} shown")
    trouble = [
        f"{p.provider}: {p.status}" + (f" ({p.message})" if p.message else "")
        for p in result.providers
        if p.status not in ("ok", "unsupported")
    ]
    if trouble:
        note_parts.append("providers: " + "; ".join(trouble))
    if not items:
        return Table(["result"], [["nothing found"]], "; ".join(note_parts) or None)
    cols = _columns(shown)
    rows = [[cell(getattr(i, c)) for c in cols] for i in shown]
    return Table(cols, rows, "; ".join(note_parts) or None)


def fields_table(model: BaseModel, skip: tuple[str, ...] = ()) -> Table:
    rows = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if name in ("sandbox", *skip) or value in (None, "", [], {}):
            continue
        rows.append([name, cell(value)])
    return Table(["field", "value"], rows)


class Rendered:
    """What a `%gpu` call returns: shows itself as a table; `.result` is the pydantic model."""

    def __init__(self, result: BaseModel, limit: int = 25) -> None:
        self.result = result
        self.limit = limit

    def __getattr__(self, name: str) -> Any:
        return getattr(self.result, name)

    def to_dicts(self) -> list[dict[str, Any]]:
        items = getattr(self.result, "items", None)
        if isinstance(items, list):
            return [i.model_dump(mode="json") for i in items]
        return [self.result.model_dump(mode="json")]

    def _badge(self) -> str:
        if isinstance(self.result, Plan | MutationResult):
            return ""  # the plan's own text carries the badge
        return "[SANDBOX] " if getattr(self.result, "sandbox", False) else ""

    def _parts(self) -> tuple[str, list[Table], str | None]:
        r = self.result
        if isinstance(r, Listing):
            return "", [listing_table(r, self.limit)], None
        if isinstance(r, Plan):
            return "Plan:", [], r.message()
        if isinstance(r, MutationResult):
            head = {
                "dry_run": "Dry run: nothing was sent.",
                "done": "Done.",
                "replayed": "Already done earlier (same idempotency key): nothing was sent.",
            }[r.outcome]
            tables = [fields_table(r.resource)] if r.resource else []
            text = (
                r.plan.message()
                if r.outcome == "dry_run"
                else ("[SANDBOX] " if r.sandbox else "") + r.plan.action
            )
            if r.detail is not None:
                text += "\n" + cell(r.detail)
            return head, tables, text
        if isinstance(r, SpendReport):
            lines = Listing(items=r.items, total=len(r.items), providers=r.providers)
            totals = Listing(items=r.by_provider, total=len(r.by_provider))
            text = f"Now: {usd(r.total_usd_per_hour)}/hour. Since creation: {usd(r.total_accrued_usd)}.\n"
            return (
                "Spend:",
                [listing_table(lines, self.limit), listing_table(totals, self.limit)],
                text + "\n".join(r.notes),
            )
        if isinstance(r, OrphanReport):
            untracked = Listing(items=r.untracked, total=len(r.untracked), providers=r.providers)
            gone = Listing(items=r.gone, total=len(r.gone))
            text = (
                f"Live at a provider but not created here: {len(r.untracked)} "
                f"({usd(r.untracked_usd_per_hour)}/hour). Created here but gone: {len(r.gone)}."
            )
            return "Orphans:", [listing_table(untracked, self.limit), listing_table(gone, self.limit)], text
        if isinstance(r, ChatResult):
            return "", [fields_table(r, skip=("content",))], r.content
        return "", [fields_table(r)], None

    def __repr__(self) -> str:
        head, tables, text = self._parts()
        parts = [self._badge() + head] if (head or self._badge()) else []
        if text:
            parts.append(text)
        parts += [t.text() for t in tables]
        return "\n".join(p for p in parts if p)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))

    def _repr_html_(self) -> str:
        head, tables, text = self._parts()
        out = []
        badge = self._badge()
        if badge or head:
            out.append(f"<p><strong>{html.escape(badge + head)}</strong></p>")
        if text:
            out.append(f"<pre>{html.escape(text)}</pre>")
        out += [t.html() for t in tables]
        return "".join(out)
