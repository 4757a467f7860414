"""What a `%gpu` call returns: a result that shows itself (text, HTML), is data (a sequence of items,
attributes forwarded, `.to_dataframe()`) and draws itself (`.plot()`)."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel

from gpu_tools.models import ChatResult, Listing, MutationResult, OrphanReport, Plan, Resource, SpendReport
from ipython_ext.render import (
    Table,
    View,
    card_lines,
    detail_lines,
    estimate_note,
    fields_lines,
    item_type,
    key_values,
    key_values_html,
    listing_table,
    provider_notes,
    sort_items,
    title_of,
    usd,
)

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

    def __dir__(self) -> list[str]:
        """Tab after `r.` offers the result's fields and methods (`.resource`, `.plan`, `.items`) too."""
        result = self.result
        names = set(super().__dir__()) | set(type(result).model_fields)
        names |= {n for n in set(dir(type(result))) - set(dir(BaseModel)) if not n.startswith("_")}
        return sorted(names)

    def to_dataframe(self, all_columns: bool | None = None) -> Any:
        """A pandas DataFrame: times as datetime64[ns, UTC], `details` flattened into `details.<key>`
        columns with all_columns (default: --all-columns), caption, notes and footnotes in `.attrs`."""
        from ipython_ext.frames import dataframe, listing_attrs

        r = self.result
        every = self.view.all_columns if all_columns is None else all_columns
        if isinstance(r, Listing):
            items, model, providers = list(r.items), item_type(r), r.providers
        elif isinstance(items := getattr(r, "items", None), list):
            model = type(items[0]) if items else None
            providers = getattr(r, "providers", [])
        else:
            items, model, providers = [r], type(r), []
        model = model or (type(items[0]) if items else None)
        caption = title_of(model) if model is not None else "Items"
        footnotes = provider_notes(providers)
        if any(getattr(i, "price_estimated", False) for i in items):
            footnotes.append(estimate_note(items))
        message = None
        if not items:
            empty = listing_table([], 0, self.view, model=model, empty=self.view.empty)
            message = empty if isinstance(empty, str) else None
        attrs = listing_attrs(r, caption, [self.words(f) for f in footnotes], message)
        return dataframe(items, model, all_columns=every, attrs=attrs)

    def plot(self, **kwargs: Any) -> Any:
        """A chart of this result (matplotlib): offers by $/GPU-hour, spend over time, price history.
        Returns the matplotlib Axes."""
        from ipython_ext.charts import plot

        return plot(self.result, **kwargs)

    # ---- presentation -------------------------------------------------------------------------
    def badge(self) -> str:
        return "[SANDBOX] " if getattr(self.result, "sandbox", False) else ""

    def blocks(self) -> list[Block]:
        r, view = self.result, self.view
        if isinstance(r, Listing):
            items = sort_items(list(r.items), view.sort) if view.sort else list(r.items)
            table = listing_table(
                items, r.total, view, providers=r.providers, model=item_type(r), empty=view.empty
            )
            # an empty listing says why, and what to do, where the core says it
            return [table, *(self.words(note) for note in r.notes if not items)]
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
            if r.history:
                last = list({p.provider: p for p in r.history}.values())
                parts = ", ".join(f"{p.provider} {usd(p.usd)}" for p in last if p.provider != "total")
                total = next(p.usd for p in last if p.provider == "total")
                head += f"\nSpent in the last {r.history_over}: {usd(total)}" + (
                    f" ({parts})." if parts else "."
                )
                head += " .plot() draws it over time."
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
