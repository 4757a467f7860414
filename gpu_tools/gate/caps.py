"""Caps and budgets: the policy every plan meets before anyone is asked, and again inside the
transaction that reserves its send (`in_transaction`), against everything live or in flight.

The money rules hold every plan that may raise what is live per hour (a create, a start, a scale-up,
a GPU change). A live resource whose cost was never journaled is counted at its provider's offer
price for its GPUs (`price_unknowns`, `PricedView`); with none known, a total cap or a budget cannot
be checked, and a cost-raising plan is refused (`unpriced_violation`) rather than count it as free."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from gpu_tools import budget
from gpu_tools.errors import GpuToolsError
from gpu_tools.gate.identity import plan_cost
from gpu_tools.gpus import canonical_gpu
from gpu_tools.journal import LiveView
from gpu_tools.models import BILLABLE_KINDS, LiveEntry, Plan
from gpu_tools.operations import Operation

if TYPE_CHECKING:
    from gpu_tools.context import Context


def _live_name(entry: LiveEntry) -> str:
    what = entry.resource_id or f"journal #{entry.journal_id} (its create's outcome is unknown)"
    return f"{entry.provider} {what}" + (f" ({entry.name!r})" if entry.name else "")


class PricedView:
    """A journal view in which each live resource whose cost was never journaled carries the best
    figure found for it (`Gate.estimates`), so the caps and budgets never count it as free."""

    def __init__(self, view: budget.JournalView, estimates: Mapping[int, float]) -> None:
        self.view, self.estimates = view, estimates

    def live(self) -> list[LiveEntry]:
        return [self._priced(e) for e in self.view.live()]

    def _priced(self, entry: LiveEntry) -> LiveEntry:
        if entry.usd_per_hour is None and entry.journal_id in self.estimates:
            return entry.model_copy(update={"usd_per_hour": self.estimates[entry.journal_id]})
        return entry

    def spent(self, since: datetime, now: datetime) -> float:
        return self.view.spent(since, now)


class Caps:
    """The policy checks of one toolkit (its settings, its journal, its providers' offers)."""

    def __init__(self, tk: Context) -> None:
        self.tk = tk
        # Live resources whose cost was never journaled (journal row id ->): the provider's offer price
        # for their GPUs, when it publishes one; else where their plan said the price came from.
        self.estimates: dict[int, float] = {}
        self.unpriced_source: dict[int, str | None] = {}

    def policy_violation(self, plan: Plan, op: Operation, others: float | None = None) -> str | None:
        """The first policy rule the plan breaks, as a sentence naming the rule and the figures, or None.
        `others` is the hourly cost of everything else live or in flight (read from the journal if
        not given). The money and GPU rules hold every plan that may raise what is live per hour (a
        create, a start, a scale-up, a GPU change); a stop, a delete or a scale-down is never refused
        by them (refusing it would keep spending higher)."""
        s = self.tk.settings
        if s.read_only:
            return "read_only: this server is read-only; no change can be made."
        if s.allowed_providers is not None:
            for provider in sorted({step.provider for step in plan.steps} or {plan.provider}):
                if provider not in s.allowed_providers:
                    return f"allowed_providers: {provider} is not in {s.allowed_providers}."
        if op.effect not in ("create", "update"):
            return None
        if (
            op.effect == "create"
            and s.require_expiry
            and plan.expires_at is None
            and plan.kind in BILLABLE_KINDS
        ):
            return "require_expiry: this create has no expires_in, and require_expiry is set."
        view = PricedView(self.tk.journal, self.estimates)
        if not self.raises(plan, op, view):
            return None
        cost = plan_cost(plan)
        if s.max_usd_per_hour is not None:
            if cost is None:
                return (
                    f"max_usd_per_hour: the cost of this plan is unknown and a cap of "
                    f"${s.max_usd_per_hour:g}/hour is set."
                )
            if cost > s.max_usd_per_hour:
                return f"max_usd_per_hour: ${cost:.2f}/hour is over the cap of ${s.max_usd_per_hour:g}/hour."
        if s.max_gpus is not None and plan.gpus is not None and plan.gpus > s.max_gpus:
            return f"max_gpus: {plan.gpus} GPUs is over the cap of {s.max_gpus}."
        if s.allowed_gpu_models is not None and plan.gpu_name is not None:
            model = canonical_gpu(plan.gpu_name)
            allowed = [m.upper() for m in s.allowed_gpu_models]
            if model is None or model.upper() not in allowed:
                return f"allowed_gpu_models: {plan.gpu_name} ({model or 'unknown model'}) is not in {s.allowed_gpu_models}."
        unpriced = self.unpriced_violation(plan, op, view)
        if unpriced:
            return unpriced
        if others is None and s.max_total_usd_per_hour is not None:
            others = self._others(plan, view)
        return self.total_cap_violation(plan, op, others or 0.0, view) or self.budget_violation(
            plan, op, view
        )

    def budget_violation(self, plan: Plan, op: Operation, view: budget.JournalView) -> str | None:
        if op.effect == "create" and plan.kind not in BILLABLE_KINDS:
            return None
        if not self.raises(plan, op, view):
            return None
        expires_at = plan.expires_at
        if op.effect == "update":
            mine = self._live_of(plan, view)
            expires_at = mine.expires_at if mine else None
        return budget.plan_violation(
            view,
            self.tk.settings,
            cost=plan_cost(plan),
            expires_at=expires_at,
            target=(plan.provider, plan.target) if op.effect == "update" else None,
            first_at=self.tk.journal.first_at(),
        )

    def in_transaction(self, plan: Plan, op: Operation, view: LiveView) -> str | None:
        """The caps that depend on what else is live, checked inside the intent's transaction."""
        priced = PricedView(view, self.estimates)
        others = self._others(plan, priced)
        return (
            self.unpriced_violation(plan, op, priced)
            or self.total_cap_violation(plan, op, others, priced)
            or self.budget_violation(plan, op, priced)
        )

    def unpriced_violation(self, plan: Plan, op: Operation, view: budget.JournalView) -> str | None:
        """With a total cap or a budget set, a plan that raises the hourly cost is refused while
        something else live has no known cost at all (none journaled, no offer price for its GPUs):
        counted as free, it would let the total pass the cap unseen. Fail closed, and say how out."""
        s = self.tk.settings
        limits = {
            "max_total_usd_per_hour": s.max_total_usd_per_hour,
            "budget_usd_per_day": s.budget_usd_per_day,
            "budget_usd_total": s.budget_usd_total,
        }
        rule = next((name for name, value in limits.items() if value is not None), None)
        if rule is None or not self.raises(plan, op, view):
            return None
        unknown = [
            e
            for e in view.live()
            if not e.stopped
            and e.usd_per_hour is None
            and (e.provider, e.resource_id) != (plan.provider, plan.target)
        ]
        if not unknown:
            return None
        names = ", ".join(_live_name(e) for e in unknown)
        sources = {self.unpriced_source.get(e.journal_id or 0) for e in unknown} - {None}
        why = f" (its plan's price: {'; '.join(sorted(sources))})" if sources else ""  # type: ignore[arg-type]
        return (
            f"{rule}: the hourly cost of live {names} is unknown{why}, and its provider offers no "
            "price for its GPUs, so the total cannot be checked (counted as free, it would let this "
            "change through unseen). Delete it or stop it (delete_resource or stop_resource) to take "
            "it out of the count, or give its provider a price for its GPU, then ask again."
        )

    @staticmethod
    def _live_of(plan: Plan, view: budget.JournalView) -> LiveEntry | None:
        return next(
            (e for e in view.live() if (e.provider, e.resource_id) == (plan.provider, plan.target)), None
        )

    def raises(self, plan: Plan, op: Operation, view: budget.JournalView) -> bool:
        """Whether the plan may raise what is live per hour, and so meets every cap and budget: a
        create of something billable; a start (a stopped resource costs nothing live, so the whole cost is added); an update
        to a higher or unknown cost of a running resource. A stop or delete never does; nor an update
        of a stopped resource (it stays stopped: its start is checked) or a scale-down."""
        if op.effect == "create":
            return plan.kind in BILLABLE_KINDS  # a registry, a key or an image costs nothing per hour
        if op.effect != "update" or op.name == "stop_resource":
            return False
        entry = self._live_of(plan, view)
        cost = plan_cost(plan)
        if op.name == "start_resource":
            if cost is None:
                return True
            current = 0.0 if entry is None or entry.stopped else entry.usd_per_hour
        else:
            if entry is not None and entry.stopped:
                return False
            if cost is None:
                return entry is not None  # a resource we know of, at a cost we cannot tell
            current = entry.usd_per_hour if entry is not None else None
        return current is None or cost > current

    def total_cap_violation(
        self, plan: Plan, op: Operation, others: float, view: budget.JournalView | None = None
    ) -> str | None:
        cap = self.tk.settings.max_total_usd_per_hour
        if cap is None or op.effect not in ("create", "update"):
            return None
        if not self.raises(plan, op, view or self.tk.journal):
            return None
        cost = plan_cost(plan)
        if cost is None:
            return (
                f"max_total_usd_per_hour: the cost of this plan is unknown and a total cap of "
                f"${cap:g}/hour is set."
            )
        if others + cost > cap:
            return (
                f"max_total_usd_per_hour: live and in-flight resources cost ${others:.2f}/hour and this "
                f"plan ${cost:.2f}/hour, ${others + cost:.2f}/hour in all, over the cap of ${cap:g}/hour."
            )
        return None

    @staticmethod
    def _others(plan: Plan, view: budget.JournalView) -> float:
        """What everything else live or in flight (not stopped) costs per hour, in a priced view
        (a resource still without a figure was refused by `unpriced_violation` first)."""
        return sum(
            e.usd_per_hour or 0.0
            for e in view.live()
            if not e.stopped and not (e.provider == plan.provider and e.resource_id == plan.target)
        )

    async def price_unknowns(self) -> None:
        """Find a figure for each live resource whose cost was never journaled, when a total cap or
        a budget needs one: the provider's offer price per GPU (the dearest offer of its GPU) times
        the GPUs its plan reached at maximum scale. None found: `unpriced_violation` refuses."""
        s = self.tk.settings
        if all(v is None for v in (s.max_total_usd_per_hour, s.budget_usd_per_day, s.budget_usd_total)):
            return
        journal = self.tk.journal
        for entry in await journal.aio.live():
            if entry.usd_per_hour is not None or entry.stopped or entry.journal_id is None:
                continue
            stored = await journal.aio.run(journal.result_of, entry.journal_id) or {}
            shown = stored.get("plan") or {}
            self.unpriced_source[entry.journal_id] = shown.get("price_source")
            estimate = await self._offer_price(entry.provider, shown.get("gpu_name"), shown.get("gpus"))
            if estimate is None:
                self.estimates.pop(entry.journal_id, None)
            else:
                self.estimates[entry.journal_id] = estimate

    async def _offer_price(self, provider: str, gpu_name: str | None, gpus: int | None) -> float | None:
        adapter = self.tk.adapters.get(provider)
        if adapter is None or not gpu_name or not gpus or not self.tk.configured(provider):
            return None
        try:
            offers = await self.tk.offers(adapter)
        except GpuToolsError:
            return None  # no figure: the resource stays unpriced, and the change is refused
        per_gpu = [
            o.usd_per_hour / (o.gpu_count or 1)
            for o in offers
            if o.gpu_name == gpu_name and o.usd_per_hour is not None
        ]
        return round(max(per_gpu) * gpus, 6) if per_gpu else None
