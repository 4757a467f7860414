"""How `%gpu` results look: tables in pandas' manner, compact cards for single results.

Tables show a compact column set per item type (`--columns` / `--all-columns` choose others),
numbers right-aligned, money as `$2.49` with one precision per column, estimates marked `~` with one
footnote, unknown values as `unknown`, a caption on every table, and widths measured with `wcwidth`
so CJK text aligns. Long free text is cut in the middle; identifiers and URLs never are.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from wcwidth import wcswidth

from gpu_tools.models import ChatResult, Listing, MutationResult, OrphanReport, Plan, Resource, SpendReport

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
    kind: str = "text"  # text | id | money | number | bool | gb
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
    return bool(getattr(item, "price_estimated", False))


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
        Column("usd_per_hour", "$/h", "money"),
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
        Column("usd_per_hour", "$/h", "money"),
        Column("hours", "hours", "number"),
        Column("accrued_usd", "accrued", "money"),
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
    """The item model of a `Listing[X]` (X), even when it is empty."""
    args = getattr(type(listing), "__pydantic_generic_metadata__", {}).get("args") or ()
    return args[0] if args and isinstance(args[0], type) else None


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
    currencies = sorted({getattr(i, "currency", None) or "?" for i in items if _est(i)} - {"USD"})
    usd_estimates = any(_est(i) and getattr(i, "currency", None) in ("USD", None) for i in items)
    parts = []
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
    if resource.usd_per_hour is not None:
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


# ---- what a %gpu call returns -----------------------------------------------------------------
Block = str | Table | list[tuple[str, str]]


class Rendered:
    """What a `%gpu` call returns: shows itself as text or HTML; otherwise it is the result.

    Attributes are the result's (`r.resource`, `r.plan`, `r.outcome`); a listing is a sequence of
    its items (`len(r)`, `r[0]`, `for o in r`) with `.to_dataframe()` and `.to_dicts()`;
    `.result` is the pydantic model itself."""

    def __init__(
        self,
        result: BaseModel,
        view: View | int | None = None,
        words: Callable[[str], str] | None = None,
    ) -> None:
        self.result = result
        self.view = view if isinstance(view, View) else View(limit=view if isinstance(view, int) else 25)
        self.words = words or (lambda text: text)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.result, name)

    # a listing is a sequence of its items
    def _listing(self) -> Listing[Any]:
        if not isinstance(self.result, Listing):
            raise TypeError(f"a {type(self.result).__name__} is not a list of items")
        return self.result

    def __len__(self) -> int:
        return len(self._listing())

    def __iter__(self) -> Iterator[Any]:
        return iter(self._listing())

    def __getitem__(self, index: int | slice) -> Any:
        got = self._listing()[index]
        return Rendered(got, self.view, self.words) if isinstance(got, Listing) else got

    def to_dicts(self) -> list[dict[str, Any]]:
        if isinstance(self.result, Listing):
            return self.result.to_dicts()
        items = getattr(self.result, "items", None)
        if isinstance(items, list):
            return [i.model_dump(mode="json") for i in items]
        return [self.result.model_dump(mode="json")]

    def to_dataframe(self) -> Any:
        if isinstance(self.result, Listing):
            return self.result.to_dataframe()
        items = getattr(self.result, "items", None)
        if isinstance(items, list):
            return Listing[Any](items=items, total=len(items)).to_dataframe()
        return Listing[Any](items=[self.result], total=1).to_dataframe()

    # ---- presentation -------------------------------------------------------------------------
    def badge(self) -> str:
        return "[SANDBOX] " if getattr(self.result, "sandbox", False) else ""

    def blocks(self) -> list[Block]:
        r, view = self.result, self.view
        if isinstance(r, Listing):
            items = sort_items(list(r.items), view.sort) if view.sort else list(r.items)
            return [
                listing_table(
                    items, r.total, view, providers=r.providers, model=item_type(r), empty=view.empty
                )
            ]
        if isinstance(r, Plan):
            return [self.words(r.message())]
        if isinstance(r, MutationResult):
            return self._mutation(r)
        if isinstance(r, SpendReport):
            unpriced = {line.provider for line in r.items if line.usd_per_hour is None}
            priced = {line.provider for line in r.items if line.usd_per_hour is not None}
            totals = [  # a provider whose every price is unknown costs "unknown", not $0.00
                p.model_copy(update={"usd_per_hour": None, "accrued_usd": None})
                if p.provider in unpriced - priced
                else p
                for p in r.by_provider
            ]
            head = f"Now: {usd(r.total_usd_per_hour)}/hour. Since creation: {usd(r.total_accrued_usd)}." + (
                " Resources with an unknown price are not counted." if unpriced else ""
            )
            return [
                head,
                listing_table(
                    r.items, len(r.items), view, providers=r.providers, empty="Nothing is running."
                ),
                *([listing_table(totals, len(totals), view)] if r.items else []),
                *([listing_table(r.budgets, len(r.budgets), view)] if r.budgets else []),
                *([listing_table(r.expiries, len(r.expiries), view)] if r.expiries else []),
                self.words("\n".join(r.notes)) if r.items else "",
                self.words(r.guard.message) if r.guard is not None else "",
            ]
        if isinstance(r, OrphanReport):
            notes = provider_notes(r.providers)
            if not r.untracked and not r.gone:
                return [
                    "Live at a provider but not created here: 0. Created here but gone: 0. Nothing to clean up.",
                    *notes,
                ]
            summary = (
                f"Live at a provider but not created here: {len(r.untracked)} "
                f"({usd(r.untracked_usd_per_hour)}/hour). Created here but gone: {len(r.gone)}."
            )
            blocks: list[Block] = [summary]
            if r.untracked:
                blocks.append(
                    listing_table(r.untracked, len(r.untracked), view, caption="Live, not created here")
                )
            if r.gone:
                blocks.append(listing_table(r.gone, len(r.gone), view))
            return blocks + notes
        if isinstance(r, ChatResult):
            return [r.content, fields_lines(r, skip=("content", "usage"))]
        if isinstance(r, Resource):
            note = getattr(r, "note", None)  # a wait that has not reached its state says what to do
            return ([self.words(note)] if note and getattr(r, "reached", True) is False else []) + [
                card_lines(r)
            ]
        listed = [
            (name, value)
            for name in type(r).model_fields
            if isinstance(value := getattr(r, name), list) and value and isinstance(value[0], BaseModel)
        ]
        if listed:  # a page of items (e.g. NetMind images): a table per list, the scalars as lines
            blocks: list[Block] = [
                listing_table(
                    value,
                    len(value),
                    view,
                    caption=title_of(type(value[0]))
                    if name == "items"
                    else name.replace("_", " ").capitalize(),
                )
                for name, value in listed
            ]
            rest = fields_lines(r, skip=tuple(n for n, _ in listed) + ("total",))
            return blocks + ([rest] if rest else [])
        return [fields_lines(r)]

    def _mutation(self, r: MutationResult) -> list[Block]:
        plan = r.plan
        if plan.nothing_to_do:
            return [plan.nothing_to_do, *[self.words(f"Note: {w}") for w in plan.warnings]]
        if r.outcome == "dry_run":
            return ["Dry run: nothing was sent.", self.words(plan.message())]
        blocks: list[Block] = []  # the outcome line was printed when it happened
        if r.resource is not None:
            blocks.append(card_lines(r.resource, plan))
        elif r.detail is not None and (lines := detail_lines(r.detail)):
            blocks.append(lines)
        for step in plan.steps:
            blocks.append(f"  - {step.action}")
        return blocks

    def __repr__(self) -> str:
        out = []
        for block in self.blocks():
            if isinstance(block, Table):
                out.append(block.text())
            elif isinstance(block, list):
                out.append(key_values(block))
            elif block:
                out.append(block)
        text = "\n".join(out)
        if not self.badge() or text.startswith("[SANDBOX]"):
            return text
        return self.badge() + ("\n" + text if text.startswith(" ") else text)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))

    def _repr_html_(self) -> str:
        out = []
        if self.badge():
            out.append("<span style='background:#fde68a;padding:0 4px;border-radius:3px'>SANDBOX</span>")
        for block in self.blocks():
            if isinstance(block, Table):
                out.append(block.html())
            elif isinstance(block, list):
                out.append(key_values_html(block))
            elif block:
                text = block.removeprefix("[SANDBOX] ")
                out.append(f"<pre style='margin:2px 0'>{html.escape(text)}</pre>")
        return "".join(out)


class ProgressLine:
    """One live status line, updated in place in Jupyter (display_id)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f"<code>{html.escape(self.text)}</code>"


def to_json(value: Any) -> str:
    return json.dumps(value, default=str)
