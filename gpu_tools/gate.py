"""The gate every mutation passes: validate -> plan -> policy -> confirm -> reserve -> send -> journal.

The fronts only supply a `Confirmer` (how to ask a human). Nothing reaches a provider unless the
plan passed policy and the confirmer said yes; every attempt with a plan leaves a journal row,
refusals included.

Exactly once: every question is an *approval* (a journal row of its own) bound to one plan by a
digest of what will be sent and what it costs. An approval is consumed in the same transaction that
re-checks the caps against everything live or in flight and writes the intent row, so it sends its
request at most once; replaying it returns the first outcome marked `replayed`. Just before a
change whose cost can rise (a create, a scale, a start) is sent, its plan is read again from the
provider with every cache bypassed; a plan that is not the approved one (price, target, body) is
refused (`PlanChanged`, journaled) and the front asks anew, and the caps and the journal use the
re-read plan. Idempotency keys are scoped to the user who asks, the provider and the operation, and
bound to the arguments they were first used with. A request whose answer is lost (`OutcomeUnknown`) leaves its row `unknown`, never resent.
A plan with `steps` (reap_expired) is confirmed once and sent one journaled request per step.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, SecretBytes, SecretStr

from gpu_tools import budget
from gpu_tools.approvals import plan_view
from gpu_tools.durations import parse_duration
from gpu_tools.errors import (
    ConfirmationRefused,
    GpuToolsError,
    InvalidInput,
    OutcomeUnknown,
    PlanChanged,
    PolicyRefused,
    ProviderError,
    redact_known,
    register_secret,
)
from gpu_tools.gpus import canonical_gpu
from gpu_tools.http import FRESH
from gpu_tools.journal import Approval, LiveView
from gpu_tools.models import BILLABLE_KINDS, LiveEntry, MutationResult, Plan, Resource
from gpu_tools.operations import CreateInput, MutationInput, Operation
from gpu_tools.secrets import SECRET_KEYS

if TYPE_CHECKING:
    from gpu_tools.context import Context

# Seconds a plan is reused for the same arguments when asking (a dry run, then the question); never at
# the send, where the plan is always read again from the provider.
PLAN_TTL = 60.0
EFFECT_OF_STEP = {"delete_resource": "destroy"}  # steps of other operations are updates
CHECK_HINT = "Run reconcile (or list_resources) to see what the provider holds; nothing will be resent."


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr | SecretBytes):
        return value.get_secret_value()
    return str(value)


def fingerprint(
    op: Operation, data: MutationInput, *, exclude: tuple[str, ...] = ("dry_run",), user: str | None = None
) -> str:
    """Identity of a call's arguments, secrets included by value (hashed, never stored), so two calls
    that differ only in a password never share a plan. With `user`, an approval's key: two users
    asking for the same thing at once on a shared journal never answer each other's question."""
    payload = json.dumps(
        data.model_dump(mode="python", exclude=set(exclude)), default=_reveal, sort_keys=True
    )
    return op.name + ":" + hashlib.sha256(payload.encode()).hexdigest() + (f":{user}" if user else "")


def args_hash(op: Operation, data: MutationInput) -> str:
    """What an idempotency key is bound to: the arguments, less the key itself and dry_run."""
    return fingerprint(op, data, exclude=("dry_run", "idempotency_key"))


def plan_digest(plan: Plan) -> str:
    """What a person approves: provider, operation, target, the request, its cost and reach. The
    expiry's clock time is left out (its duration is in the arguments), so a plan rebuilt a minute
    later for the same arguments is still the plan that was approved."""

    def core(p: Plan) -> dict[str, Any]:
        return {
            "provider": p.provider,
            "operation": p.operation,
            "target": p.target,
            "method": p.method,
            "path": p.path,
            "body": p.body,
            "usd": [p.usd_per_hour, p.usd_per_hour_max],
            "gpus": [p.gpus, p.gpu_name],
            "reversible": p.reversible,
            "steps": [core(s) for s in p.steps],
        }

    return hashlib.sha256(json.dumps(core(plan), sort_keys=True, default=str).encode()).hexdigest()


def _cost_text(plan: Plan) -> str:
    low, high = plan.usd_per_hour, plan.usd_per_hour_max
    if low is None and high is None:
        return "an unknown price"
    if high is not None and low is not None and high != low:
        return f"${low:.2f}-${high:.2f}/hour"
    return f"${(high if high is not None else low):.2f}/hour"


def describe_change(old: Plan, new: Plan) -> str:
    """What differs between the approved plan and the one read just now, old -> new, price first."""
    parts = []
    if (old.usd_per_hour, old.usd_per_hour_max) != (new.usd_per_hour, new.usd_per_hour_max):
        parts.append(f"price {_cost_text(old)} -> {_cost_text(new)}")
    if old.target != new.target:
        parts.append(f"target {old.target} -> {new.target}")
    if (old.gpus, old.gpu_name) != (new.gpus, new.gpu_name):
        parts.append(f"GPUs {old.gpus}x {old.gpu_name} -> {new.gpus}x {new.gpu_name}")
    if (old.method, old.path) != (new.method, new.path):
        parts.append(f"request {old.method} {old.path} -> {new.method} {new.path}")
    if old.body != new.body:
        parts.append("the request body")
    if old.reversible != new.reversible:
        parts.append("reversibility")
    return ", ".join(parts) or f"what is sent (now {_cost_text(new)}: {new.action})"


def plan_cost(plan: Plan) -> float | None:
    """The hourly figure policy uses: the maximum-scale one when there is one."""
    return plan.usd_per_hour_max if plan.usd_per_hour_max is not None else plan.usd_per_hour


def _live_name(entry: LiveEntry) -> str:
    what = entry.resource_id or f"journal #{entry.journal_id} (its create's outcome is unknown)"
    return f"{entry.provider} {what}" + (f" ({entry.name!r})" if entry.name else "")


class Confirmer(Protocol):
    async def confirm(self, plan: Plan) -> bool: ...


class Refuse:
    """A confirmer that never agrees: the fail-closed default."""

    async def confirm(self, plan: Plan) -> bool:
        return False


class Approve:
    """A confirmer for an answer already given (MCP elicitation, `--yes` typed by the person)."""

    def __init__(self, answer: bool = True) -> None:
        self.answer = answer

    async def confirm(self, plan: Plan) -> bool:
        return self.answer is True


@dataclass
class Question:
    """What a front asks a person: the plan, and the approval a yes will consume."""

    plan: Plan
    approval: Approval
    mode: str = "form"  # how the person approves it: form, page or passkey (gpu_tools.approvals)

    @property
    def text(self) -> str:
        return self.approval.message

    @property
    def on_the_page(self) -> bool:
        return self.mode != "form"


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


class Gate:
    def __init__(self, tk: Context) -> None:
        self.tk = tk
        self._plans: dict[str, tuple[float, Plan]] = {}
        self.in_flight: set[int] = set()  # journal rows being sent by this process right now
        # Live resources whose cost was never journaled (journal row id ->): the provider's offer price
        # for their GPUs, when it publishes one; else where their plan said the price came from.
        self.estimates: dict[int, float] = {}
        self.unpriced_source: dict[int, str | None] = {}

    # ---- policy -------------------------------------------------------------------------------
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

    # ---- planning -----------------------------------------------------------------------------
    async def plan(self, op: Operation, data: MutationInput, *, fresh: bool = False) -> Plan:
        """Build (or reuse, for the same arguments within PLAN_TTL) the plan of a mutation.
        `fresh`: read everything from the provider now, bypassing every cache (this one, the
        catalogue memos, the shelf), and keep that plan for the next question."""
        if op.planner is None:  # pragma: no cover - registry invariant
            raise InvalidInput(f"{op.name} is not a mutation")
        self._register_input_secrets(op, data)
        key = fingerprint(op, data)
        now = time.monotonic()
        self._plans = {k: v for k, v in self._plans.items() if now - v[0] < PLAN_TTL}
        if key in self._plans and not fresh:
            return self._plans[key][1]
        token = FRESH.set(True) if fresh else None
        try:
            plan = await self._build(op, data)
        finally:
            if token is not None:
                FRESH.reset(token)
        self._plans[key] = (now, plan)
        return plan

    def _cached(self, op: Operation, data: MutationInput) -> Plan | None:
        hit = self._plans.get(fingerprint(op, data))
        return hit[1] if hit is not None and time.monotonic() - hit[0] < PLAN_TTL else None

    async def _build(self, op: Operation, data: MutationInput) -> Plan:
        if op.planner is None:
            raise RuntimeError("internal error: expected op.planner is not None")
        self.tk.check_provider_allowed(getattr(data, "provider", None) or op.provider)
        plan = await op.planner(self.tk, data)
        if plan.kind is None and op.creates:
            plan.kind = op.creates  # type: ignore[assignment]
        expires_at = self._expires_at(data)
        if expires_at and plan.kind in BILLABLE_KINDS:
            plan.expires_at = expires_at
            plan.expires_action = getattr(data, "expires_action", "delete")
            adapter = self.tk.adapters.get(plan.provider)
            if plan.expires_action == "stop" and adapter is not None and not adapter.can_stop(plan.kind):
                raise InvalidInput(
                    f"{op.name}: {adapter.title} cannot stop this kind of resource ({plan.kind}), so expires_action=stop could never "
                    "be carried out; use expires_action=delete. Nothing was sent.",
                    provider=plan.provider,
                )
            if not getattr(data, "expires_in", None):
                plan.warnings.append(
                    f"No expires_in given: the default_expires_in setting ({self.tk.settings.default_expires_in}) applies."
                )
        if op.effect == "create":
            await self.tk.journal.aio.run(self._warn_if_lost_before, op, data, plan)
        await self.price_unknowns()
        violation = await self.tk.journal.aio.run(self.policy_violation, plan, op)
        if violation:
            plan.warnings.append(f"Refused by policy {violation}")
        return plan

    def _warn_if_lost_before(self, op: Operation, data: MutationInput, plan: Plan) -> None:
        """A create with these very arguments whose answer was lost may have made the resource."""
        same = args_hash(op, data)
        for row in self.tk.journal.unknown_rows():
            if (
                row["operation"] == op.name
                and row["provider"] == plan.provider
                and row.get("args_hash") == same
            ):
                plan.warnings.append(
                    f"A create with these arguments was sent at {row['at']} (journal #{row['id']}) and its outcome "
                    "is unknown: the resource may already exist. Run reconcile before sending it again."
                )

    def _register_input_secrets(self, op: Operation, data: MutationInput) -> None:
        """Passwords the user passed in are secrets too: redacted from every output, log and journal
        row from now on (an explicit reveal_secrets read may still show them)."""
        provider = getattr(data, "provider", None) or op.provider
        keys = set(SECRET_KEYS)
        if provider in self.tk.adapters:
            keys |= {k.lower() for k in self.tk.adapters[provider].secret_keys}
        for name, value in data.__dict__.items():
            if isinstance(value, SecretStr):
                register_secret(value.get_secret_value(), credential=False)
            elif isinstance(value, str) and name.lower() in keys:
                register_secret(value, credential=False)

    def _expires_at(self, data: MutationInput) -> str | None:
        if not isinstance(data, CreateInput):
            return None
        expires_in = data.expires_in or self.tk.settings.default_expires_in
        if not expires_in:
            return None
        return (self.tk.now() + parse_duration(expires_in)).isoformat(timespec="seconds")

    async def question(
        self,
        op: Operation,
        args: dict[str, Any],
        *,
        resume: bool = False,
        asked_by: str | None = None,
        page: bool = False,
        client: str | None = None,
        page_only: bool = False,
        asked: str | None = None,
    ) -> Question | None:
        """The question a front should ask before running the call, or None when the call will not
        ask at all (invalid input, dry run, replayed key, policy refusal, nothing to do): the run
        then says why. Each fresh question is a new approval; `resume` (a later round of the same
        MCP call, where the person's answer arrives) reads the plan from the provider again, and
        reuses `asked`, the approval this very call's earlier round asked about (its identity
        travels with the protocol's request state), only while that plan is still the one it was
        made for. Otherwise (changed, or no approval named: never another call's, even with the
        same arguments) a new approval, whose different text makes the client ask again.
        A question the approval page answers (the policy says so, or `page`: the front cannot show a
        form) is the one open page approval of this plan and requester (`_page_question`);
        `page_only`: only such a question (None, and no approval made, when the form would ask)."""
        shown: Plan | None = None
        try:
            data = op.parse(args)
            if data.dry_run or await self.tk.journal.aio.run(self._key_row, op, data, asked_by) is not None:
                return None
            if resume:
                shown = self._cached(op, data)
            plan = await self.plan(op, data, fresh=resume)
        except GpuToolsError:
            return None
        if await self.tk.journal.aio.run(self.policy_violation, plan, op) or self._nothing_to_do(plan):
            return None
        fp, digest = fingerprint(op, data, user=asked_by), plan_digest(plan)
        mode = self.tk.approvals.mode_for(plan, op.effect)
        if page_only and not (page or mode != "form"):
            return None
        if page or mode != "form":
            return await self._page_question(
                data, plan, fp, digest, asked_by, client, "page" if mode == "form" else mode
            )
        latest = await self.tk.journal.aio.approval(asked) if resume and asked else None
        if latest is not None and latest.fingerprint != fp:
            latest = None  # another call's, or another user's: never this call's answer
        text = redact_known(plan.message())
        if latest is not None and not latest.expired:
            if latest.digest == digest:
                return Question(plan, latest)
            if latest.consumed_at is None:
                change = (
                    describe_change(shown, plan)
                    if shown is not None and plan_digest(shown) == latest.digest
                    else f"now {_cost_text(plan)}"
                )
                await self.tk.journal.aio.record(
                    plan,
                    op.effect,
                    "refused",
                    error=f"the plan changed while the question was open ({change}): the answer to approval "
                    f"{latest.id} was not used, and the new plan is asked",
                    idempotency_key=getattr(data, "idempotency_key", None),
                    actor=asked_by,
                )
                text = f"The plan changed since you were asked: {change}.\n\n{text}"
        approval = await self.tk.journal.aio.new_approval(
            fp, digest, lambda aid: f"{text}\n(approval {aid})", asked_by=asked_by
        )
        return Question(plan, approval)

    async def _page_question(
        self,
        data: MutationInput,
        plan: Plan,
        fp: str,
        digest: str,
        asked_by: str | None,
        client: str | None,
        mode: str,
    ) -> Question:
        """The page approval of this plan and requester: the latest one while it is unexpired and for
        this very plan (pending, decided or used: calling again waits on it, is refused by its denial
        or replays its send), else a new one."""
        journal = self.tk.journal.aio
        latest = await journal.latest_approval(fp)
        if latest is not None and latest.mode is not None and not latest.expired and latest.digest == digest:
            return Question(plan, latest, latest.mode)
        text = redact_known(plan.message())
        expires = self.tk.now() + self.tk.approvals.ttl()
        args = data.model_dump(mode="json", exclude={"dry_run"})
        view = await journal.run(plan_view, self.tk, plan, args)
        approval = await journal.new_approval(
            fp,
            digest,
            lambda aid: f"{text}\n(approval {aid})",
            asked_by=asked_by,
            page={
                "expires_at": expires.isoformat(timespec="seconds"),
                "mode": mode,
                "view": view,
                "client": client,
            },
        )
        return Question(plan, approval, mode)

    @staticmethod
    def page_problem(approval: Approval, mode: str) -> str | None:
        """Why this approval does not let its plan be sent under approval mode `mode`, or None."""
        if approval.mode is None:
            if mode == "form":
                return None
            return f"approval={mode}: a form's yes is not enough; this plan must be approved on the approval page"
        if approval.status == "denied":
            return f"denied on the approval page by {approval.decided_by} at {approval.decided_at}"
        if approval.status != "approved":
            return f"approval {approval.id} has not been approved on the approval page"
        if mode == "passkey" and approval.decided_how != "passkey":
            return "approval=passkey: this approval was not given with an enrolled approver's passkey"
        return None

    @staticmethod
    def _nothing_to_do(plan: Plan) -> bool:
        return plan._request is None and not plan.steps

    def _key_row(self, op: Operation, data: Any, user: str | None) -> dict[str, Any] | None:
        """The row that first used this call's idempotency key: keys belong to the user who asked
        (None: the local user, over stdio or in process) as well as to the provider and operation."""
        key = getattr(data, "idempotency_key", None)
        provider = getattr(data, "provider", None) or op.provider or ""
        return self.tk.journal.find_key(provider, op.name, key, user=user) if key else None

    # ---- running ------------------------------------------------------------------------------
    async def run(
        self,
        op: Operation,
        data: MutationInput,
        confirmer: Confirmer,
        *,
        approval_id: str | None = None,
        actor: str | None = None,
    ) -> MutationResult:
        """Run a mutation. `approval_id`: the front asked with `question()` before this call (the
        MCP resolver, the y/N prompt), and the yes belongs to that approval and no other; without
        it the confirmer asks now and a new approval is made for its answer. A confirmer whose yes
        answers a question asked before (`answers_a_question`, the MCP front's) must name it: a
        yes without its approval is refused, never turned into a new approval.
        `actor` is who is calling: the row records them as the one who confirmed, and as the one who
        asked unless the approval names who asked (another round, possibly on another server).

        Just before a change that may cost more is sent (a create, a scale, a start), the plan is
        read again from the provider, bypassing every cache, and compared with the approved one:
        any change refuses the send (`PlanChanged`, journaled) and the front asks again. The caps
        and the journal then use that re-read plan, so the price journaled is the price sent."""
        confirmed_by = actor
        sandbox = self.tk.settings.sandbox
        key = getattr(data, "idempotency_key", None)
        first = await self.tk.journal.aio.run(self._key_row, op, data, actor)
        if first is not None:
            return await self._replay_key(op, data, first, actor=actor)

        try:
            plan = await self.plan(op, data)
        except GpuToolsError as exc:  # nothing could be planned (not found, not offered...): say so
            if not data.dry_run:
                provider = getattr(data, "provider", None) or exc.provider
                await self._record_refusal(
                    op,
                    self._unplanned(op, provider),
                    f"the plan could not be made: {exc.message}",
                    key,
                    actor,
                )
            raise
        if data.dry_run:
            return MutationResult(outcome="dry_run", plan=plan, sandbox=sandbox)
        if self._nothing_to_do(plan):
            return MutationResult(outcome="done", plan=plan, detail={"steps": []}, sandbox=sandbox)

        async def refuse(error: str, what: Plan | None = None) -> None:
            await self._record_refusal(op, what or plan, error, key, actor)

        violation = await self.tk.journal.aio.run(self.policy_violation, plan, op)
        if violation:
            await refuse(f"policy {violation}")
            raise PolicyRefused(f"refused by policy {violation} Nothing was sent.", provider=plan.provider)

        try:
            confirmed = await confirmer.confirm(plan)
        except ConfirmationRefused as exc:
            await refuse(exc.message)
            raise
        if confirmed is not True:
            await refuse("not confirmed")
            raise ConfirmationRefused(
                f"not confirmed: {plan.action} Nothing was sent.", provider=plan.provider
            )

        fp, digest = fingerprint(op, data, user=actor), plan_digest(plan)
        if approval_id is None and getattr(confirmer, "answers_a_question", False):
            await refuse(
                "a yes that matches no question: the answer could not be tied to the plan it answered"
            )
            raise ConfirmationRefused(
                "this yes cannot be matched to the question it answered, so it approves nothing. Nothing "
                "was sent; call again to be asked.",
                provider=plan.provider,
            )
        if approval_id is not None:
            approval = await self.tk.journal.aio.approval(approval_id)
            if approval is None or approval.fingerprint != fp or approval.expired:
                await refuse("no current question for these arguments")
                raise ConfirmationRefused(
                    "this answer matches no current question for these arguments (it expired or was never "
                    "asked). Nothing was sent; call again to be asked.",
                    provider=plan.provider,
                )
            if approval.consumed_at is not None:
                return await self.tk.journal.aio.run(self._replay_approval, approval, plan)
            problem = self.page_problem(approval, self.tk.approvals.mode_for(plan, op.effect))
            if problem:
                await refuse(problem)
                raise ConfirmationRefused(
                    f"not approved: {problem}. Nothing was sent.", provider=plan.provider
                )
            if approval.mode is not None:
                confirmed_by = f"{approval.decided_by} ({approval.decided_how})"
            actor = approval.asked_by or actor
            if approval.digest != digest:
                await refuse("the plan changed after the question was asked")
                raise PlanChanged(
                    f"the plan changed after the question was asked: it is now {_cost_text(plan)} "
                    f"({plan.action}), not what was approved. Nothing was sent; call again to be asked "
                    "about the new plan.",
                    provider=plan.provider,
                )
        else:
            mode = self.tk.approvals.mode_for(plan, op.effect)
            if mode != "form":
                await refuse(f"approval={mode}: a yes given outside the approval page is not enough")
                raise ConfirmationRefused(
                    f"not approved: approval={mode} is in force, so this plan must be approved on the approval "
                    "page; a yes given anywhere else is not enough. Nothing was sent.",
                    provider=plan.provider,
                )
            approval = await self.tk.journal.aio.new_approval(
                fp, digest, redact_known(plan.message()), asked_by=actor
            )

        if self._cost_can_rise(op) and not plan.steps:
            plan = await self._reread(op, data, plan, approval, refuse)

        self._plans.clear()  # a send changes the world: no cached plan is reused after it
        who = {"actor": actor, "confirmed_by": confirmed_by}
        if plan.steps:
            return await self._send_steps(plan, approval, **who)
        return await self._send(
            plan, op.effect, op, key=key, args=args_hash(op, data), approval=approval, data=data, **who
        )

    @staticmethod
    def _cost_can_rise(op: Operation) -> bool:
        """A create, a scale or a start: a change whose price is read again just before it is sent."""
        return op.effect == "create" or (op.effect == "update" and op.name != "stop_resource")

    async def _reread(
        self,
        op: Operation,
        data: MutationInput,
        shown: Plan,
        approval: Approval,
        refuse: Callable[[str, Plan | None], Awaitable[None]],
    ) -> Plan:
        """The plan read again from the provider just before the send, when it is still exactly
        the approved one (same digest: price, target, request); else a journaled refusal."""
        try:
            fresh = await self.plan(op, data, fresh=True)
        except GpuToolsError as exc:
            await refuse(f"the plan could not be read again before the send: {exc}", None)
            raise ConfirmationRefused(
                f"the plan could not be read again from the provider just before the send ({exc}), so its "
                "price could not be checked. Nothing was sent; try again.",
                provider=shown.provider,
            ) from None
        if plan_digest(fresh) != approval.digest:
            change = describe_change(shown, fresh)
            violation = await self.tk.journal.aio.run(self.policy_violation, fresh, op)
            if violation:
                await refuse(f"the plan changed before the send ({change}); policy {violation}", fresh)
                raise PolicyRefused(
                    f"the plan changed after it was approved ({change}), and the new plan is refused by "
                    f"policy {violation} Nothing was sent.",
                    provider=fresh.provider,
                )
            await refuse(f"the plan changed before the send: {change}", fresh)
            raise PlanChanged(
                f"the plan changed after it was approved: {change}. Nothing was sent; the new plan must "
                "be approved first (call again to be asked).",
                provider=fresh.provider,
            )
        violation = await self.tk.journal.aio.run(self.policy_violation, fresh, op)
        if violation:
            await refuse(f"policy {violation}", fresh)
            raise PolicyRefused(f"refused by policy {violation} Nothing was sent.", provider=fresh.provider)
        return fresh

    async def parse(self, op: Operation, args: dict[str, Any], *, actor: str | None = None) -> Any:
        """A mutation's arguments, parsed strictly; invalid ones are refused with one journal row,
        whichever front the call came through (nothing is asked, nothing is sent)."""
        try:
            return op.parse(args)
        except GpuToolsError as exc:
            await self.journal_refusal(op, args, f"invalid input: {exc}", actor=actor, plan_it=False)
            raise

    async def journal_refusal(
        self,
        op: Operation,
        args: dict[str, Any],
        reason: str,
        *,
        actor: str | None = None,
        plan_it: bool = True,
    ) -> None:
        """Journal a refusal that happened outside `run` (invalid arguments, a confirmation the front
        could not complete, a hidden tool), with the plan when one can be built and a bare row when
        not (or when `plan_it` is false: a tool the server hides asks no provider anything)."""
        plan: Plan | None = None
        key = args.get("idempotency_key") if isinstance(args.get("idempotency_key"), str) else None
        provider = args.get("provider") if isinstance(args.get("provider"), str) else None
        if plan_it:
            try:
                plan = await self.plan(op, op.parse(args))
            except GpuToolsError:
                pass
        await self._record_refusal(op, plan or self._unplanned(op, provider), reason, key, actor)

    async def _record_refusal(
        self, op: Operation, plan: Plan, reason: str, key: str | None, actor: str | None
    ) -> None:
        await self.tk.journal.aio.record(
            plan, op.effect, "refused", error=reason, idempotency_key=key, actor=actor
        )

    def _unplanned(self, op: Operation, provider: str | None, target: str = "(not planned)") -> Plan:
        return Plan(
            provider=(provider or op.provider or "unknown")[:40],
            operation=op.name,
            action=f"{op.title} (not planned: the call was refused first).",
            target=target,
            method="",
            path="",
            reversible=True,
            reversibility="nothing was sent",
            sandbox=self.tk.settings.sandbox,
        )

    async def _replay_key(
        self, op: Operation, data: MutationInput, row: dict[str, Any], *, actor: str | None = None
    ) -> MutationResult:
        used = f"idempotency_key {row['idempotency_key']!r} was first used at {row['at']} by {op.name} for {row['target']} (journal #{row['id']})"
        if row.get("args_hash") and row["args_hash"] != args_hash(op, data):
            message = f"{used} with different arguments. Nothing was sent; use a new key for a new request."
            plan = self._unplanned(op, row["provider"], target=str(row["target"] or "(not planned)"))
            await self.tk.journal.aio.record(
                plan,
                op.effect,
                "refused",
                error=f"idempotency key reused with other arguments: {used}",
                actor=actor,
            )
            raise InvalidInput(message, provider=row["provider"])
        if row["outcome"] != "ok":
            raise ConfirmationRefused(
                f"{used}; it was sent but its outcome is unknown, so nothing was sent again.",
                provider=row["provider"],
                hint=CHECK_HINT,
            )
        stored = await self.tk.journal.aio.run(self.tk.journal.result_of, row["id"]) or {}
        return MutationResult.model_validate(
            {**stored, "outcome": "replayed", "sandbox": self.tk.settings.sandbox}
        )

    def _replay_approval(self, approval: Approval, plan: Plan) -> MutationResult:
        """A yes that was already used: its first outcome, never a second send."""
        if approval.result is not None:
            return MutationResult.model_validate(
                {**approval.result, "outcome": "replayed", "sandbox": self.tk.settings.sandbox}
            )
        row = self.tk.journal.row(approval.journal_id) if approval.journal_id else None
        state = row["outcome"] if row else "unknown"
        why = f": {row['error']}" if row and row.get("error") else ""
        raise ConfirmationRefused(
            f"approval {approval.id} was already used (journal #{approval.journal_id}, outcome {state}{why}). "
            "An approval sends its request once: nothing was sent again. Call again to be asked anew.",
            provider=plan.provider,
            hint=CHECK_HINT if state == "unknown" else None,
        )

    async def _send(
        self,
        plan: Plan,
        effect: str,
        op: Operation | None = None,
        *,
        key: str | None = None,
        args: str | None = None,
        approval: Approval | None = None,
        data: MutationInput | None = None,
        final: bool = True,
        actor: str | None = None,
        confirmed_by: str | None = None,
    ) -> MutationResult:
        """Reserve (approval, key, cap and intent row in one transaction), send the one request,
        journal the outcome."""
        request, finish = plan._request, plan._finish
        if request is None or finish is None:
            raise RuntimeError("planners must attach the request")
        sandbox = self.tk.settings.sandbox
        cap: Callable[[LiveView], str | None] | None = None
        if op is not None:
            cap = lambda view: self.in_transaction(plan, op, view)  # noqa: E731
        reservation = await self.tk.journal.aio.reserve(
            plan,
            effect,
            idempotency_key=key,
            args_hash=args,
            approval_id=approval.id if approval else None,
            expires_at=(self._expires_at(data) if data is not None and plan.expires_at else None)
            or plan.expires_at,
            kind=plan.kind,
            cap=cap,
            actor=actor,
            confirmed_by=confirmed_by,
        )
        if reservation.used is not None:
            return await self.tk.journal.aio.run(self._replay_approval, reservation.used, plan)
        if reservation.key_row is not None and op is not None and data is not None:
            return await self._replay_key(op, data, reservation.key_row, actor=actor)
        if reservation.refused is not None:
            raise PolicyRefused(
                f"refused by policy {reservation.refused} Nothing was sent.", provider=plan.provider
            )
        row_id = reservation.row_id
        if row_id is None:
            raise RuntimeError("internal error: expected row_id is not None")
        adapter = self.tk.adapter(plan.provider)
        self.in_flight.add(row_id)
        try:
            try:
                answer = await adapter.http.request(
                    request.method, request.path, json_body=request.json_body, params=request.params
                )
            except OutcomeUnknown as exc:
                await self._finish(plan, row_id, "unknown", error=str(exc))
                raise OutcomeUnknown(
                    f"{exc.message} Journal #{row_id} stays 'unknown' and counts as live for caps and spend "
                    "until reconciliation finds what the provider holds.",
                    provider=exc.provider,
                    hint=CHECK_HINT,
                ) from None
            except ProviderError as exc:
                await self._finish(plan, row_id, "failed", error=str(exc))
                raise
            try:
                outcome = await finish(answer)
            except GpuToolsError as exc:
                # The provider accepted the request (2xx) but its answer could not be read.
                await self._finish(plan, row_id, "unknown", error=f"answer not understood: {exc}")
                raise OutcomeUnknown(
                    f"{plan.method} {plan.path} was accepted, but the answer could not be read ({exc.message}). "
                    f"Journal #{row_id} stays 'unknown'.",
                    provider=plan.provider,
                    hint=CHECK_HINT,
                ) from None
        finally:
            # Anything else (cancellation, a crash) leaves the row 'unknown' on purpose.
            self.in_flight.discard(row_id)
        result = MutationResult(outcome="done", plan=plan, journal_id=row_id, sandbox=sandbox)
        if isinstance(outcome, Resource):
            outcome.sandbox = sandbox
            result.resource = outcome
        elif isinstance(outcome, BaseModel):
            result.detail = adapter.mask(outcome.model_dump(mode="json", exclude={"sandbox"}))
        elif outcome is not None:
            result.detail = adapter.mask(outcome)
        stored = result.model_dump(mode="json", exclude={"outcome", "sandbox"})
        await self._finish(
            plan,
            row_id,
            "ok",
            resource_id=result.resource.resource_id
            if result.resource
            else (None if effect == "create" else plan.target),
            result=stored,
            kind=result.resource.kind if result.resource else None,
        )
        if approval is not None and final:
            await self._finish(plan, row_id, None, approval_id=approval.id, stored=stored)
        return result

    async def _finish(
        self,
        plan: Plan,
        row_id: int,
        outcome: str | None,
        *,
        approval_id: str | None = None,
        stored: Any = None,
        **kw: Any,
    ) -> None:
        """Journal what the provider answered (and the approval's result). The provider has the
        request by now: if the journal cannot be written, say what that means for the money."""
        try:
            if outcome is not None:
                await self.tk.journal.aio.finish(row_id, outcome, **kw)
            if approval_id is not None:
                await self.tk.journal.aio.set_approval_result(approval_id, stored)
        except Exception as exc:  # the journal's database went away between the intent and the answer
            raise OutcomeUnknown(
                "the provider received the request: the resource may exist; it is journaled as unknown "
                f"(journal #{row_id}) and reconciled when the database is back. ({exc})",
                provider=plan.provider,
                hint=CHECK_HINT,
            ) from None

    async def _send_steps(
        self, plan: Plan, approval: Approval, actor: str | None = None, confirmed_by: str | None = None
    ) -> MutationResult:
        """Send each step as its own journaled request; one failing step does not stop the others.
        The approval is consumed by the first step's reservation."""
        done: list[dict[str, Any]] = []
        first = True
        for step in plan.steps:
            try:
                result = await self._send(
                    step,
                    EFFECT_OF_STEP.get(step.operation, "update"),
                    approval=approval if first else None,
                    final=False,
                    actor=actor,
                    confirmed_by=confirmed_by,
                )
                if first and result.outcome == "replayed":
                    return result
                done.append(
                    {
                        "target": step.target,
                        "provider": step.provider,
                        "outcome": "ok",
                        "journal_id": result.journal_id,
                    }
                )
            except ConfirmationRefused:
                if first:
                    raise
            except GpuToolsError as exc:
                done.append(
                    {"target": step.target, "provider": step.provider, "outcome": "failed", "error": str(exc)}
                )
            first = False
        result = MutationResult(
            outcome="done", plan=plan, detail={"steps": done}, sandbox=self.tk.settings.sandbox
        )
        await self.tk.journal.aio.set_approval_result(
            approval.id, result.model_dump(mode="json", exclude={"outcome", "sandbox"})
        )
        return result
