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
bound to the arguments they were first used with. A request whose answer is lost (`OutcomeUnknown`)
leaves its row `unknown`, never resent. A plan with `steps` (reap_expired) is confirmed once and
sent one journaled request per step.

This module plans, asks and runs; its parts: `identity` (a call's fingerprint, a plan's digest),
`caps` (caps and budgets), `asking` (questions and approvals), `send` (reserve, send, journal).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import SecretStr

from gpu_tools.durations import parse_duration
from gpu_tools.errors import (
    ConfirmationRefused,
    GpuToolsError,
    InvalidInput,
    PlanChanged,
    PolicyRefused,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    UnderWay,
    redact_known,
    register_secret,
)
from gpu_tools.gate.asking import Question, page_problem, page_question
from gpu_tools.gate.caps import Caps
from gpu_tools.gate.identity import args_hash, cost_text, describe_change, fingerprint, plan_digest
from gpu_tools.gate.send import UNDER_WAY_HINT, Order, Sender, unplanned
from gpu_tools.http import FRESH
from gpu_tools.journal import Approval
from gpu_tools.journal.approvals import masked_plan
from gpu_tools.models import BILLABLE_KINDS, MutationResult, Plan, cut_text, plain
from gpu_tools.operations import CreateInput, MutationInput, Operation
from gpu_tools.secrets import SECRET_KEYS

if TYPE_CHECKING:
    from gpu_tools.context import Context

# Seconds a plan is reused for the same arguments when asking (a dry run, then the question); never at
# the send, where the plan is always read again from the provider.
PLAN_TTL = 60.0
Refusal = Callable[[str, "Plan | None"], Awaitable[None]]


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


class Gate:
    def __init__(self, tk: Context) -> None:
        self.tk = tk
        self._plans: dict[str, tuple[float, Plan]] = {}
        self.clock: Callable[[], float] = time.monotonic  # the plan cache's clock (tests move it)
        self.caps = Caps(tk)
        self.sender = Sender(tk, self.caps)
        self.in_flight = self.sender.in_flight  # journal rows being sent by this process right now

    # ---- planning -----------------------------------------------------------------------------
    async def plan(self, op: Operation, data: MutationInput, *, fresh: bool = False) -> Plan:
        """Build (or reuse, for the same arguments within PLAN_TTL) the plan of a mutation.
        `fresh`: read everything from the provider now, bypassing every cache (this one, the
        catalogue memos, the shelf), and keep that plan for the next question."""
        if op.planner is None:  # pragma: no cover - registry invariant
            raise InvalidInput(f"{op.name} is not a mutation")
        self._register_input_secrets(op, data)
        key = fingerprint(op, data)
        now = self.clock()
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
        return hit[1] if hit is not None and self.clock() - hit[0] < PLAN_TTL else None

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
        await self.caps.price_unknowns()
        violation = await self.tk.journal.aio.run(self.caps.policy_violation, plan, op)
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
        same arguments) a new approval, whose different text makes the client ask again; `asked`,
        when not reused (expired, its plan changed, the page now answers), is closed with its row.
        A question the approval page answers (the policy says so, or `page`: the front cannot show a
        form) is the one open page approval of this plan and requester (`asking.page_question`);
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
        if await self.tk.journal.aio.run(self.caps.policy_violation, plan, op) or self._nothing_to_do(plan):
            return None
        if await self.tk.journal.aio.run(self.tk.journal.under_way, plan):
            return None  # the same change is under way: the run refuses it, nobody is asked
        fp, digest = fingerprint(op, data, user=asked_by), plan_digest(plan)
        mode = self.tk.approvals.mode_for(plan, op.effect)
        if page_only and not (page or mode != "form"):
            return None
        latest = await self.tk.journal.aio.approval(asked) if asked else None
        if latest is not None and latest.fingerprint != fp:
            latest = None  # another call's, or another user's: never this call's answer
        text = plan.message(redact_known)
        if latest is not None and latest.mode is None and latest.consumed_at is None:
            why = None  # why the form question this call's earlier round asked is not used
            if latest.expired:
                expired = latest.expiry.isoformat(timespec="seconds")
                why = f"the answer came back after the question expired at {expired}"
            elif latest.digest != digest:
                change = self._since_asked(latest, plan, shown)
                why = f"the plan changed while the question was open ({change})"
                text = f"The plan changed since you were asked: {change}.\n\n{text}"
            elif page or mode != "form":
                why = f"approval={mode} is now in force for this plan, so it is asked on the approval page"
            if why is not None:
                await self._close_asked(op, data, plan, latest, asked_by, why)
        if page or mode != "form":
            return await page_question(
                self.tk,
                data,
                plan,
                fp,
                digest,
                asked_by,
                client,
                "page" if mode == "form" else mode,
                op.effect,
            )
        if latest is not None and not latest.expired and latest.digest == digest:
            return Question(plan, latest)
        approval = await self.tk.journal.aio.new_approval(
            fp, digest, lambda aid: f"{text}\n(approval {aid})", asked_by=asked_by, awaiting=(plan, op.effect)
        )
        return Question(plan, approval)

    async def _close_asked(
        self, op: Operation, data: MutationInput, plan: Plan, asked: Approval, actor: str | None, why: str
    ) -> None:
        """The question an earlier round asked is answered, and not used: closed with its refusal row."""
        await self.tk.journal.aio.record(
            plan,
            op.effect,
            "refused",
            error=f"{why}: the answer to approval {asked.id} was not used, and the plan is asked again",
            idempotency_key=getattr(data, "idempotency_key", None),
            actor=asked.asked_by or actor,
            closes=(asked.id, asked.fingerprint),
        )

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
        answers: str | None = None,
    ) -> MutationResult:
        """Run a mutation. `approval_id`: the front asked with `question()` before this call (the
        MCP resolver, the y/N prompt), and the yes belongs to that approval and no other; without
        it the confirmer asks now and a new approval is made for its answer. A confirmer whose yes
        answers a question asked before (`answers_a_question`, the MCP front's) must name it: a
        yes without its approval is refused, never turned into a new approval.
        `actor` is who is calling: the row records them as the one who confirmed, and as the one who
        asked unless the approval names who asked (another round, possibly on another server).
        `answers`: the question an earlier round of this very call asked, when the front asks none
        now (the policy refuses the plan, it cannot be made...): this call's refusal closes it.

        Every question ends in one journal row: a refusal closes the question the call answers (the
        one named, else the open page approval of this plan and requester) in the same transaction
        as its row, and writes nothing when another process closed it first.

        Just before a change that may cost more is sent (a create, a scale, a start), the plan is
        read again from the provider, bypassing every cache, and compared with the approved one:
        any change refuses the send (`PlanChanged`, journaled) and the front asks again. The caps
        and the journal then use that re-read plan, so the price journaled is the price sent."""
        key = getattr(data, "idempotency_key", None)
        fp = fingerprint(op, data, user=actor)
        named = approval_id or answers
        closes = (named, fp) if named else None  # the question this call answers, if named
        asked = await self.tk.journal.aio.approval(named) if named else None
        if asked is not None and asked.fingerprint == fp and asked.consumed_at is not None:
            # A call that comes back for a question already closed (a round sent again after its
            # answer was lost): its first outcome, before anything else is checked or journaled.
            provider = getattr(data, "provider", None) or op.provider
            return await self.sender.replay_used(asked, unplanned(op, provider, self.tk.settings.sandbox))
        first = await self.tk.journal.aio.run(self._key_row, op, data, actor)
        if first is not None:
            return await self.sender.replay_key(op, args_hash(op, data), first, actor=actor, closes=closes)
        plan = await self._plan_or_refuse(op, data, key, actor, closes, fp, asked)
        sandbox = self.tk.settings.sandbox
        if data.dry_run:
            return MutationResult(outcome="dry_run", plan=plan, sandbox=sandbox)
        if self._nothing_to_do(plan):
            if closes is not None:
                why = f"not sent: {plan.nothing_to_do or 'there is nothing to do'}"
                await self._record_refusal(op, plan, why, key, actor, closes)
            return MutationResult(outcome="done", plan=plan, detail={"steps": []}, sandbox=sandbox)
        await self._meets_policy(op, plan, self._refusal(op, plan, key, actor, closes, page=fp), asked, fp)
        busy = await self.tk.journal.aio.run(self.tk.journal.under_way, plan)
        if busy:
            await self._refusal(op, plan, key, actor, closes, page=fp)(busy, None)
            raise UnderWay(f"{busy}. Nothing was sent.", provider=plan.provider, hint=UNDER_WAY_HINT)
        refuse = self._refusal(op, plan, key, actor, closes)
        page = asked if asked is not None and asked.mode is not None and asked.fingerprint == fp else None
        await self._confirmed(confirmer, plan, refuse, page)
        approval = await self._approval(op, data, plan, confirmer, approval_id, actor, refuse)
        if isinstance(approval, MutationResult):
            return approval  # the approval was used already: its first outcome, replayed
        confirmed_by = f"{approval.decided_by} ({approval.decided_how})" if approval.mode else actor
        actor = approval.asked_by or actor
        if self._cost_can_rise(op) and not plan.steps:
            again = self._refusal(op, plan, key, actor, (approval.id, approval.fingerprint))
            plan = await self._reread(op, data, plan, approval, again)
        self._plans.clear()  # a send changes the world: no cached plan is reused after it
        if plan.steps:
            return await self.sender.send_steps(plan, approval, actor=actor, confirmed_by=confirmed_by)
        order = Order(
            plan,
            op.effect,
            op,
            key=key,
            args=args_hash(op, data),
            approval=approval,
            expires_at=(self._expires_at(data) if plan.expires_at else None) or plan.expires_at,
            actor=actor,
            confirmed_by=confirmed_by,
        )
        return await self.sender.send(order)

    async def _plan_or_refuse(
        self,
        op: Operation,
        data: MutationInput,
        key: str | None,
        actor: str | None,
        closes: tuple[str, str] | None,
        fp: str,
        asked: Approval | None,
    ) -> Plan:
        """The call's plan; one that cannot be made (not found, not offered...) is a journaled refusal."""
        try:
            return await self.plan(op, data)
        except GpuToolsError as exc:
            if not data.dry_run:
                provider = getattr(data, "provider", None) or exc.provider
                reason = f"the plan could not be made: {exc.message}"
                what = unplanned(op, provider, self.tk.settings.sandbox)
                # A passing failure (rate limit, outage, timeout) leaves a page approval open for the
                # retry to use (a person approved it); a lasting one (not found, not allowed) closes it.
                if isinstance(exc, RateLimited | ProviderUnavailable | ProviderTimeout):
                    page_question = asked is not None and asked.mode is not None
                    await self._refusal(op, what, key, actor, None if page_question else closes)(reason, None)
                else:
                    await self._refusal(op, what, key, actor, closes, page=fp)(reason, None)
            raise

    def _refusal(
        self,
        op: Operation,
        plan: Plan,
        key: str | None,
        actor: str | None,
        closes: tuple[str, str] | None = None,
        *,
        page: str | None = None,
    ) -> Refusal:
        """How this call journals a refusal: of `plan`, unless another (the re-read one) is named;
        closing `closes`, the question it answers (`Journal.record`). `page`: this call's fingerprint,
        when it names no question because the front asked none (the policy now refuses the plan, or
        it cannot be made): the refusal answers the open page approval of this requester and these
        arguments (of this very plan, when there is one), which the call came back for."""

        async def refuse(error: str, what: Plan | None = None) -> None:
            closing = closes
            if closing is None and page is not None:
                closing = await self._open_page_question(page, None if plan._request is None else plan)
            await self._record_refusal(op, what or plan, error, key, actor, closing)

        return refuse

    async def _open_page_question(self, fp: str, plan: Plan | None) -> tuple[str, str] | None:
        """The open page approval of this requester and these arguments (of `plan`, if given)."""
        latest = await self.tk.journal.aio.latest_approval(fp)
        if (
            latest is None
            or latest.mode is None
            or latest.consumed_at is not None
            or latest.expired
            or (plan is not None and latest.digest != plan_digest(plan))
        ):
            return None
        return latest.id, fp

    async def _meets_policy(
        self, op: Operation, plan: Plan, refuse: Refusal, asked: Approval | None, fp: str
    ) -> None:
        """The caps and budgets on `plan`, or a journaled refusal. When the call answers a question
        (`asked`, still open) about another plan (a later round read the provider's new price), the
        refusal says what changed, old -> new, as the re-read at the send does."""
        violation = await self.tk.journal.aio.run(self.caps.policy_violation, plan, op)
        if not violation:
            return
        if (
            asked is not None
            and asked.fingerprint == fp
            and asked.consumed_at is None
            and asked.digest != plan_digest(plan)
        ):
            change = self._since_asked(asked, plan)
            await refuse(f"the plan changed since the question ({change}); policy {violation}", None)
            raise PolicyRefused(
                f"the plan changed since you were asked ({change}), and the new plan is refused by "
                f"policy {violation} Nothing was sent.",
                provider=plan.provider,
            )
        await refuse(f"policy {violation}", None)
        raise PolicyRefused(f"refused by policy {violation} Nothing was sent.", provider=plan.provider)

    async def _confirmed(
        self, confirmer: Confirmer, plan: Plan, refuse: Refusal, page: Approval | None
    ) -> None:
        """The confirmer's yes (the boolean true only), or a journaled refusal; a no that collects a
        page approval's decision (`page`) is worded by the page: denied by whom, expired, undecided."""
        try:
            confirmed = await confirmer.confirm(plan)
        except ConfirmationRefused as exc:
            await refuse(exc.message, None)
            raise
        if confirmed is not True:
            why = "not confirmed"
            if page is not None:
                current = await self.tk.journal.aio.approval(page.id) or page
                if current.expired:
                    why = f"approval {current.id} expired at {current.expiry.isoformat(timespec='seconds')} on the approval page"
                else:
                    why = page_problem(current, current.mode or "page") or why
            await refuse(why, None)
            raise ConfirmationRefused(f"{why}: {plan.action} Nothing was sent.", provider=plan.provider)

    async def _approval(
        self,
        op: Operation,
        data: MutationInput,
        plan: Plan,
        confirmer: Confirmer,
        approval_id: str | None,
        actor: str | None,
        refuse: Refusal,
    ) -> Approval | MutationResult:
        """The approval this yes consumes: the question's (`approval_id`), checked against these
        arguments, this user, the policy's approval mode and this very plan; a new one for a yes
        given now (a form's, where the policy allows one). A used one answers with its replay."""
        fp, digest = fingerprint(op, data, user=actor), plan_digest(plan)
        if approval_id is None:
            if getattr(confirmer, "answers_a_question", False):
                await refuse(
                    "a yes that matches no question: the answer could not be tied to the plan it answered",
                    None,
                )
                raise ConfirmationRefused(
                    "this yes cannot be matched to the question it answered, so it approves nothing. "
                    "Nothing was sent; call again to be asked.",
                    provider=plan.provider,
                )
            mode = self.tk.approvals.mode_for(plan, op.effect)
            if mode != "form":
                await refuse(f"approval={mode}: a yes given outside the approval page is not enough", None)
                raise ConfirmationRefused(
                    f"not approved: approval={mode} is in force, so this plan must be approved on the approval "
                    "page; a yes given anywhere else is not enough. Nothing was sent.",
                    provider=plan.provider,
                )
            return await self.tk.journal.aio.new_approval(
                fp, digest, plan.message(redact_known), asked_by=actor, awaiting=(plan, op.effect)
            )
        approval = await self.tk.journal.aio.approval(approval_id)
        if approval is None or approval.fingerprint != fp or approval.expired:
            await refuse("no current question for these arguments", None)
            raise ConfirmationRefused(
                "this answer matches no current question for these arguments (it expired or was never "
                "asked). Nothing was sent; call again to be asked.",
                provider=plan.provider,
            )
        if approval.consumed_at is not None:
            return await self.sender.replay_used(approval, plan)
        problem = page_problem(approval, self.tk.approvals.mode_for(plan, op.effect))
        if problem:
            await refuse(problem, None)
            raise ConfirmationRefused(f"not approved: {problem}. Nothing was sent.", provider=plan.provider)
        if approval.digest != digest:
            # The plan kept for the question expired (PLAN_TTL) and the one built again differs.
            key = getattr(data, "idempotency_key", None)
            change = self._since_asked(approval, plan)
            await self._record_refusal(
                op,
                plan,
                f"the plan changed after the question was asked: {change}",
                key,
                approval.asked_by or actor,
                (approval.id, approval.fingerprint),
            )
            raise PlanChanged(
                f"the plan changed after the question was asked: {change}. Nothing was sent; call again "
                "to be asked about the new plan.",
                change=change,
                provider=plan.provider,
            )
        return approval

    @staticmethod
    def _since_asked(asked: Approval, plan: Plan, shown: Plan | None = None) -> str:
        """What differs, old -> new, between the plan `asked` showed (`shown` when it is still that
        plan, else the one kept with the question, secrets masked) and `plan`."""
        if shown is not None and plan_digest(shown) == asked.digest:
            return describe_change(shown, plan)
        old = asked.asked_plan()
        if old is None:
            return plain(f"now {cost_text(plan)} ({plan.action})")
        return describe_change(old, masked_plan(plan))

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
        refuse: Refusal,
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
            violation = await self.tk.journal.aio.run(self.caps.policy_violation, fresh, op)
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
                change=change,
                provider=fresh.provider,
            )
        violation = await self.tk.journal.aio.run(self.caps.policy_violation, fresh, op)
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
        asked: str | None = None,
    ) -> None:
        """Journal a refusal that happened outside `run` (invalid arguments, a confirmation the front
        could not complete, a hidden tool), with the plan when one can be built and a bare row when
        not (or when `plan_it` is false: a tool the server hides asks no provider anything).
        `asked`: the approval an earlier round of this call asked about, closed by this refusal when
        it is this requester's."""
        plan: Plan | None = None
        key = args.get("idempotency_key") if isinstance(args.get("idempotency_key"), str) else None
        provider = args.get("provider") if isinstance(args.get("provider"), str) else None
        closes: tuple[str, str] | None = None
        try:
            data = op.parse(args)
        except GpuToolsError:
            data = None
        if data is not None and asked is not None:
            closes = (asked, fingerprint(op, data, user=actor))
        if plan_it and data is not None:
            try:
                plan = await self.plan(op, data)
            except GpuToolsError:
                pass
        await self._record_refusal(
            op, plan or unplanned(op, provider, self.tk.settings.sandbox), reason, key, actor, closes
        )

    async def _record_refusal(
        self,
        op: Operation,
        plan: Plan,
        reason: str,
        key: str | None,
        actor: str | None,
        closes: tuple[str, str] | None = None,
    ) -> None:
        """A refused row; what came from the caller (an idempotency key the schema refused as too
        long, a reason quoting an argument) is stored bounded, cut as a confirmation shows it.
        `closes`: the question this refusal answers (no row when another process closed it first)."""
        await self.tk.journal.aio.record(
            plan,
            op.effect,
            "refused",
            error=cut_text(reason),
            idempotency_key=cut_text(key) if key is not None else None,
            actor=actor,
            closes=closes,
        )
