"""How `%gpu` results look: tables in pandas' manner, compact cards for single results.

Tables show a compact column set per item type (`--columns` / `--all-columns` choose others),
numbers right-aligned, money as `$2.49` with one precision per column, estimates marked `~` with one
footnote, unknown values as `unknown`, a caption on every table, and widths measured with `wcwidth`
so CJK text aligns. Long free text is cut in the middle; identifiers and URLs never are.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from pydantic import BaseModel
from wcwidth import wcswidth

from gpu_tools.models import MutationResult, Plan, Resource, parse_time

MAX_TEXT = 32  # free text wider than this is cut in the middle
GENERIC_COLUMNS = 7  # columns shown by default for item types without a declared set


# ---- cells ------------------------------------------------------------------------------------
def width(text: str) -> int:
    """Display width in terminal cells (CJK characters take two)."""
    w = wcswidth(text)
    return w if w >= 0 else len(text)


def pad(text: str, size: int, right: bool) -> str:
    fill = " " * max(0, size - width(text))
    return fill + text if right else text + fill


def cut_middle(text: str, limit: int = MAX_TEXT) -> str:
    if width(text) <= limit:
        return text
    head, tail = "", ""
    for ch in text:  # keep display width, not characters
        if width(head + ch) > (limit - 1) // 2 + (limit - 1) % 2:
            break
        head += ch
    for ch in reversed(text):
        if width(ch + tail) > (limit - 1) // 2:
            break
        tail = ch + tail
    return head + "…" + tail


def usd(amount: float, decimals: int = 2) -> str:
    return f"${amount:,.{decimals}f}"


def money_decimals(values: Sequence[float | None]) -> int:
    """Two decimals, or four for the whole column when a non-zero amount is under a cent."""
    return 4 if any(v and abs(v) < 0.01 for v in values) else 2


def plain(value: Any) -> str:
    """Any field value as short text (lists joined, dicts summarised, never a JSON blob)."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, list | tuple):
        return ", ".join(plain(v) for v in value) if value else "none"
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, dict):
        return f"{{{len(value)} fields}}" if value else "none"
    return str(value)


# ---- columns ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """One table column: `name` is what --columns and --sort take; `kind` decides format and alignment."""

    name: str
    header: str
    kind: str = "text"  # text | id | money | number | bool | gb | time (ISO, shown as UTC to the second)
    get: Callable[[Any], Any] | None = None
    estimated: Callable[[Any], bool] | None = None

    def value(self, item: Any) -> Any:
        return self.get(item) if self.get else getattr(item, self.name, None)

    @property
    def right(self) -> bool:
        return self.kind in ("money", "number", "gb")


def _gpu(item: Any) -> str | None:
    name = getattr(item, "gpu_model", None) or getattr(item, "gpu_name", None)
    count = getattr(item, "gpu_count", None)
    if not name:
        return None
    return f"{name} ×{count}" if count else name


def _est(item: Any) -> bool:
    """An estimate: a converted or configured price, or a plan's cost where the provider states none."""
    return bool(getattr(item, "price_estimated", False)) or from_plan(item)


def from_plan(item: Any) -> bool:
    return str(getattr(item, "price_source", None) or "").startswith("journal")


COLUMNS: dict[str, list[Column]] = {
    "Offer": [
        Column("provider", "provider"),
        Column("gpu", "GPU", get=_gpu),
        Column("gpu_memory_gb", "memory", "gb"),
        Column("region", "region"),
        Column("usd_per_hour", "$/h", "money", estimated=_est),
        Column("usd_per_gpu_hour", "$/GPU-h", "money", estimated=_est),
        Column("available", "available", "bool"),
        Column("offer_id", "id", "id"),
    ],
    "Resource": [
        Column("provider", "provider"),
        Column("name", "name"),
        Column("status", "status"),
        Column("gpu", "GPU", get=_gpu),
        Column("region", "region"),
        Column("usd_per_hour", "$/h", "money", estimated=_est),
        Column("resource_id", "id", "id"),
    ],
    "Template": [
        Column("provider", "provider"),
        Column("name", "name", "id"),
        Column("gpu_types", "GPU types"),
        Column("regions", "regions"),
    ],
    "Region": [Column("provider", "provider"), Column("region_id", "id", "id"), Column("name", "name")],
    "JournalEntry": [
        Column("id", "#", "number"),
        Column("at", "at"),
        Column("provider", "provider"),
        Column("operation", "operation"),
        Column("target", "target"),
        Column("outcome", "outcome"),
        Column("usd_per_hour", "$/h", "money"),
        Column("resource_id", "resource id", "id"),
    ],
    "ProviderInfo": [
        Column("name", "provider"),
        Column("title", "title"),
        Column("configured", "configured", "bool"),
        Column("base_url", "base URL", "id"),
    ],
    "SpendLine": [
        Column("provider", "provider"),
        Column("name", "name"),
        Column("status", "status"),
        Column("usd_per_hour", "$/h", "money", estimated=_est),
        Column("hours", "hours", "number"),
        Column("accrued_usd", "accrued", "money", estimated=_est),
        Column("expires_at", "expires"),
        Column("resource_id", "id", "id"),
    ],
    "ProviderSpend": [
        Column("provider", "provider"),
        Column("resources", "resources", "number"),
        Column("usd_per_hour", "$/h", "money"),
        Column("accrued_usd", "accrued", "money"),
    ],
    "LiveEntry": [
        Column("provider", "provider"),
        Column("name", "name"),
        Column("created_at", "created"),
        Column("usd_per_hour", "$/h", "money"),
        Column("resource_id", "id", "id"),
    ],
    "BudgetLine": [
        Column("name", "budget"),
        Column("limit_usd", "limit", "money"),
        Column("spent_usd", "spent", "money"),
        Column("committed_usd", "committed", "money"),
        Column("left_usd", "left", "money"),
        Column("since", "since"),
    ],
    "PricePoint": [
        Column("at", "first seen (UTC)", "time"),
        Column("provider", "provider"),
        Column("gpu", "GPU", get=lambda p: f"{p.gpu} ×{p.gpu_count}" if p.gpu_count else p.gpu),
        Column("region", "region"),
        Column("usd_per_hour", "$/h", "money", estimated=_est),
        Column("usd_per_gpu_hour", "$/GPU-h", "money", estimated=_est),
        Column("seen_at", "last seen (UTC)", "time"),
    ],
    "Expiry": [
        Column("provider", "provider"),
        Column("name", "name"),
        Column("expires_at", "expires"),
        Column("action", "then"),
        Column("resource_id", "id", "id"),
    ],
}
CAPTIONS = {
    "Offer": "GPU offers",
    "Resource": "Resources",
    "Template": "Templates",
    "Region": "Regions",
    "JournalEntry": "Journal",
    "ProviderInfo": "Providers",
    "SpendLine": "Spend per resource",
    "ProviderSpend": "Spend per provider",
    "LiveEntry": "Created here, no longer listed",
    "BudgetLine": "Budgets",
    "Expiry": "Next expiries",
    "PricePoint": "Price history",
    "Reconciled": "Reconciled journal rows",
}
SKIP = {"details", "sandbox", "body"}
ID_NAMES = ("id", "_id", "url", "image", "path")


def _kind_of(name: str, annotation: Any) -> str:
    text = str(annotation)
    if name.startswith("usd") or name.endswith("_usd"):
        return "money"
    if name.endswith(ID_NAMES) or name in ("url", "base_url"):
        return "id"
    if "bool" in text:
        return "bool"
    if "int" in text or "float" in text:
        return "number"
    return "text"


def all_columns(model: type[BaseModel]) -> list[Column]:
    """Every scalar-ish field of a model, in declaration order, with formats guessed from names."""
    known = {c.name: c for c in COLUMNS.get(model.__name__, [])}
    out = []
    for name, field in model.model_fields.items():
        if name in SKIP:
            continue
        if name in known:
            out.append(known[name])
        else:
            estimated = _est if name.startswith("usd") and "price_estimated" in model.model_fields else None
            out.append(Column(name, name, _kind_of(name, field.annotation), estimated=estimated))
    return out


def default_columns(model: type[BaseModel], items: Sequence[Any] = ()) -> list[Column]:
    """The compact set: the declared one, or the first few fields that have a value."""
    if model.__name__ in COLUMNS:
        return COLUMNS[model.__name__]
    filled = [c for c in all_columns(model) if not items or any(c.value(i) not in (None, "") for i in items)]
    return filled[:GENERIC_COLUMNS]


def title_of(model: type[BaseModel]) -> str:
    """A caption for a list of `model`: "GPU offers", or "Netmind images" from NetmindImage."""
    if model.__name__ in CAPTIONS:
        return CAPTIONS[model.__name__]
    words = re.findall(r"[A-Z][a-z0-9]*", model.__name__) or [model.__name__]
    text = " ".join([words[0], *(w.lower() for w in words[1:])])
    return text[:-1] + "ies" if text.endswith("y") else text + "s"


def item_type(listing: BaseModel) -> type[BaseModel] | None:
    """The item model of a `Listing[X]` (X), even when it is empty, or of a subclass of one."""
    for cls in type(listing).__mro__:
        args = getattr(cls, "__pydantic_generic_metadata__", {}).get("args") or ()
        if args and isinstance(args[0], type):
            return args[0]
    return None


def pick_columns(
    model: type[BaseModel], names: list[str] | None, every: bool, items: Sequence[Any] = ()
) -> list[Column]:
    """The columns a table shows: `names` (from --columns), all of them, or the compact default."""
    if every:
        return all_columns(model)
    if not names:
        return default_columns(model, items)
    available = {c.name: c for c in [*default_columns(model), *all_columns(model)]}
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"no column {', '.join(unknown)}; columns: {', '.join(available)}")
    return [available[n] for n in names]


def sort_key(model: type[BaseModel], field: str) -> Callable[[Any], Any]:
    """Sort by a field or a column name; unknown values go last either way."""
    columns = {c.name: c for c in all_columns(model)} | {c.name: c for c in default_columns(model)}
    if field not in columns and field not in model.model_fields:
        raise ValueError(f"cannot sort by {field!r}; fields: {', '.join(columns)}")
    column = columns.get(field) or Column(field, field)
    return column.value


def sort_items(items: list[Any], field: str) -> list[Any]:
    """`field` ascending, `-field` descending; unknown values last in both."""
    descending = field.startswith("-")
    name = field.lstrip("-")
    if not items:
        return items
    key = sort_key(type(items[0]), name)
    known = [i for i in items if key(i) is not None]
    unknown = [i for i in items if key(i) is None]
    return sorted(known, key=key, reverse=descending) + unknown


# ---- tables -----------------------------------------------------------------------------------
class Table:
    """Formatted cells with a caption and footnotes, as aligned text or as HTML."""

    def __init__(
        self,
        caption: str,
        columns: list[Column],
        items: Sequence[Any],
        notes: list[str] | None = None,
    ) -> None:
        self.caption = caption
        self.columns = columns
        self.notes = list(notes or [])
        self.decimals = {
            c.name: money_decimals([c.value(i) for i in items]) for c in columns if c.kind == "money"
        }
        self.rows = [[self._cell(c, item) for c in columns] for item in items]
        if any(c.estimated and c.estimated(i) for i in items for c in columns if c.kind == "money"):
            self.notes.append(estimate_note(items))

    def _cell(self, column: Column, item: Any) -> str:
        value = column.value(item)
        if value is None or value == "":
            return "unknown"
        if column.kind == "money":
            text = usd(float(value), self.decimals[column.name])
            return ("~" + text) if column.estimated and column.estimated(item) else text
        if column.kind == "time" and isinstance(value, str):
            moment = parse_time(value)
            return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else value
        if column.kind == "gb":
            return f"{value:g} GB" if isinstance(value, int | float) else str(value)
        if column.kind == "number" and isinstance(value, float):
            return f"{value:,.2f}"
        text = plain(value)
        return text if column.kind in ("id", "bool", "money", "number") else cut_middle(text)

    def text(self) -> str:
        headers = [c.header for c in self.columns]
        widths = [max([width(h), *(width(r[i]) for r in self.rows)]) for i, h in enumerate(headers)]
        right = [c.right for c in self.columns]

        def line(cells: list[str]) -> str:
            return "  ".join(pad(c, w, r) for c, w, r in zip(cells, widths, right, strict=True)).rstrip()

        out = [self.caption, line(headers), line(["-" * w for w in widths])]
        out += [line(r) for r in self.rows]
        out += self.notes
        return "\n".join(out)

    def html(self) -> str:
        def td(text: str, right: bool, tag: str = "td") -> str:
            align = "right" if right else "left"
            return f"<{tag} style='text-align:{align}'>{html.escape(text)}</{tag}>"

        head = "".join(td(c.header, c.right, "th") for c in self.columns)
        body = "".join(
            "<tr>" + "".join(td(v, c.right) for v, c in zip(r, self.columns, strict=True)) + "</tr>"
            for r in self.rows
        )
        caption = f"<caption style='text-align:left;caption-side:top'>{html.escape(self.caption)}</caption>"
        notes = "".join(f"<div><small>{html.escape(n)}</small></div>" for n in self.notes)
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{notes}"


def estimate_note(items: Sequence[Any]) -> str:
    """The one footnote for `~` figures: converted from which currencies, or taken from your settings."""
    priced = [i for i in items if getattr(i, "price_estimated", False)]
    currencies = sorted({getattr(i, "currency", None) or "?" for i in priced} - {"USD"})
    usd_estimates = any(getattr(i, "currency", None) in ("USD", None) for i in priced)
    parts = []
    if any(from_plan(i) for i in items):
        parts.append("the plan's cost, journaled at creation (the provider states none)")
    if currencies:
        parts.append(f"converted to USD from {', '.join(currencies)} at the configured exchange rate")
    if usd_estimates:
        parts.append("a price from your settings, not one the provider published")
    return "~ estimated: " + "; ".join(parts) + "."


def provider_notes(providers: Sequence[Any]) -> list[str]:
    trouble = [
        f"{p.provider}: {p.status}" + (f" ({p.message})" if p.message else "")
        for p in providers
        if p.status not in ("ok", "unsupported")
    ]
    return ["Not included: " + "; ".join(trouble)] if trouble else []


@dataclass
class View:
    """How a listing is shown: the display limit, the columns, the sort (from the magic's flags)."""

    limit: int = 25
    columns: list[str] | None = None
    all_columns: bool = False
    sort: str | None = None
    empty: str | None = None  # what an empty listing says (default: "No <items> found.")


def listing_table(
    items: Sequence[Any],
    total: int,
    view: View,
    caption: str | None = None,
    providers: Sequence[Any] = (),
    empty: str | None = None,
    model: type[BaseModel] | None = None,
) -> Table | str:
    """A table of `items` (the first `view.limit` of them), or a sentence when there are none."""
    notes = provider_notes(providers)
    if not items:
        what = caption or (title_of(model) if model else "items")
        what = what if what[:2].isupper() else what[:1].lower() + what[1:]  # "GPU offers", "templates"
        return "\n".join([f"No {what} found." if empty is None else empty, *notes]).strip()
    model = type(items[0])
    title = caption or title_of(model)
    shown = list(items[: view.limit])
    count = f"{len(shown)} of {total} shown" if total > len(shown) else f"{total}"
    sort = f", sorted by {view.sort}" if view.sort else ""
    columns = pick_columns(model, view.columns, view.all_columns, shown)
    return Table(f"{title} ({count}{sort})", columns, shown, notes)


# ---- single results ---------------------------------------------------------------------------
def card_lines(resource: Resource, plan: Plan | None = None) -> list[tuple[str, str]]:
    """What, where, status, cost, id (and url, expiry): a few lines, no JSON. A mutation's `plan`
    supplies the cost and expiry the provider's answer does not carry."""
    what = f"{resource.kind} {resource.name!r}" if resource.name else resource.kind
    where = ", ".join(x for x in (resource.provider, resource.region, _gpu(resource)) if x)
    status = resource.status + (f" ({resource.raw_status})" if resource.raw_status else "")
    lines = [("what", what), ("where", where), ("status", status)]
    if resource.replicas is not None:
        bounds = [
            f"{k} {v}"
            for k, v in (("min", resource.min_replicas), ("max", resource.max_replicas))
            if v is not None
        ]
        lines.append(("replicas", f"{resource.replicas}" + (f" ({', '.join(bounds)})" if bounds else "")))
    if resource.usd_per_hour is not None and from_plan(resource):
        cost = f"~{usd(resource.usd_per_hour)}/hour (the plan's estimate, journaled at creation)"
    elif resource.usd_per_hour is not None:
        cost = f"{usd(resource.usd_per_hour)}/hour"
    elif plan is not None and plan.usd_per_hour is not None:
        cost = f"~{usd(plan.usd_per_hour)}/hour (the plan's estimate)"
    else:
        cost = "unknown"
    lines.append(("cost", cost))
    lines.append(("id", resource.resource_id))
    if resource.url:
        lines.append(("url", resource.url))
    if resource.model:
        lines.append(("model", resource.model))
    expires = plan.expires_at if plan is not None else None
    if expires:
        lines.append(("expires", expires))
    return lines


def detail_lines(detail: Any) -> list[tuple[str, str]]:
    """A provider's non-resource answer as a few key/value lines (scalars only)."""
    if isinstance(detail, BaseModel):
        detail = detail.model_dump(mode="json", exclude_none=True)
    if isinstance(detail, dict):
        return [(str(k), plain(v)) for k, v in list(detail.items())[:8] if v not in (None, "", [], {})]
    if isinstance(detail, list):
        return [("items", str(len(detail)))]
    return [("answer", plain(detail))] if detail not in (None, "") else []


def fields_lines(model: BaseModel, skip: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    return [
        (name, plain(getattr(model, name)))
        for name in type(model).model_fields
        if name not in ("sandbox", *skip) and getattr(model, name) not in (None, "", [], {})
    ]


def outcome_line(result: MutationResult) -> str:
    """One line per mutation, printed for every `%gpu` change in a cell."""
    plan = result.plan
    badge = "[SANDBOX] " if result.sandbox else ""
    if plan.nothing_to_do:
        return badge + plan.nothing_to_do
    if result.outcome == "dry_run":
        return badge + f"Dry run, nothing was sent: {plan.action}"
    if result.outcome == "replayed":
        return badge + f"Already done earlier (same idempotency key), nothing was sent: {plan.action}"
    rid = f" ({result.resource.resource_id})" if result.resource else ""
    return badge + f"Done: {plan.action.rstrip('.')}{rid}."


def key_values(lines: list[tuple[str, str]]) -> str:
    size = max((width(k) for k, _ in lines), default=0)
    return "\n".join(f"  {pad(k, size, False)}  {v}" for k, v in lines)


def key_values_html(lines: list[tuple[str, str]]) -> str:
    rows = "".join(
        f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>{html.escape(v)}</td></tr>"
        for k, v in lines
    )
    return f"<table>{rows}</table>"
