"""The gate every mutation passes: validate -> plan -> policy -> confirm -> journal -> send -> journal.

The fronts only supply a `Confirmer` (how to ask a human). Nothing reaches a provider unless the
plan passed policy and the confirmer said yes; every attempt with a plan leaves a journal row.
A plan with `steps` (reap_expired) is confirmed once and sent one journaled request per step.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, SecretBytes, SecretStr

from gpu_tools.errors import ConfirmationRefused, GpuToolsError, InvalidInput, PolicyRefused, ProviderError
from gpu_tools.gpus import canonical_gpu
from gpu_tools.models import MutationResult, Plan, Resource
from gpu_tools.operations import MutationInput, Operation, parse_duration

if TYPE_CHECKING:
    from gpu_tools.toolkit import Toolkit

PLAN_TTL = 60.0  # seconds a plan is reused for the same arguments (MCP asks and runs in separate rounds)
EFFECT_OF_STEP = {"delete_resource": "destroy"}  # steps of other operations are updates


def fingerprint(op: Operation, data: MutationInput) -> str:
    """Identity of a call's arguments, secrets included by value (hashed, never stored), so two calls
    that differ only in a password never share a plan."""

    def reveal(value: Any) -> Any:
        if isinstance(value, SecretStr | SecretBytes):
            return value.get_secret_value()
        return str(value)

    payload = json.dumps(data.model_dump(mode="python", exclude={"dry_run"}), default=reveal, sort_keys=True)
    return op.name + ":" + hashlib.sha256(payload.encode()).hexdigest()


def plan_cost(plan: Plan) -> float | None:
    """The hourly figure policy uses: the maximum-scale one when there is one."""
    return plan.usd_per_hour_max if plan.usd_per_hour_max is not None else plan.usd_per_hour


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
        return self.answer


class Gate:
    def __init__(self, tk: Toolkit) -> None:
        self.tk = tk
        self._plans: dict[str, tuple[float, Plan]] = {}

    # ---- policy -------------------------------------------------------------------------------
    def policy_violation(self, plan: Plan, op: Operation) -> str | None:
        """The first policy rule the plan breaks, as a sentence naming the rule and the figures, or None."""
        s = self.tk.settings
        if s.read_only:
            return "read_only: this server is read-only; no change can be made."
        if s.allowed_providers is not None:
            for provider in sorted({step.provider for step in plan.steps} or {plan.provider}):
                if provider not in s.allowed_providers:
                    return f"allowed_providers: {provider} is not in {s.allowed_providers}."
        if op.effect not in ("create", "update"):
            return None
        cost = plan_cost(plan)
        if s.max_usd_per_hour is not None:
            if cost is None and op.effect == "create":
                return (
                    f"max_usd_per_hour: the cost of this plan is unknown and a cap of "
                    f"${s.max_usd_per_hour:g}/hour is set."
                )
            if cost is not None and cost > s.max_usd_per_hour:
                return f"max_usd_per_hour: ${cost:.2f}/hour is over the cap of ${s.max_usd_per_hour:g}/hour."
        if s.max_gpus is not None and plan.gpus is not None and plan.gpus > s.max_gpus:
            return f"max_gpus: {plan.gpus} GPUs is over the cap of {s.max_gpus}."
        if s.allowed_gpu_models is not None and plan.gpu_name is not None:
            model = canonical_gpu(plan.gpu_name)
            allowed = [m.upper() for m in s.allowed_gpu_models]
            if model is None or model.upper() not in allowed:
                return f"allowed_gpu_models: {plan.gpu_name} ({model or 'unknown model'}) is not in {s.allowed_gpu_models}."
        if s.max_total_usd_per_hour is not None:
            if cost is None and op.effect == "create":
                return (
                    f"max_total_usd_per_hour: the cost of this plan is unknown and a total cap of "
                    f"${s.max_total_usd_per_hour:g}/hour is set."
                )
            if cost is not None:
                others = sum(
                    e.usd_per_hour or 0.0
                    for e in self.tk.journal.live()
                    if not (e.provider == plan.provider and e.resource_id == plan.target)
                )
                if others + cost > s.max_total_usd_per_hour:
                    return (
                        f"max_total_usd_per_hour: live resources cost ${others:.2f}/hour and this plan "
                        f"${cost:.2f}/hour, ${others + cost:.2f}/hour in all, over the cap of "
                        f"${s.max_total_usd_per_hour:g}/hour."
                    )
        return None

    # ---- planning -----------------------------------------------------------------------------
    async def plan(self, op: Operation, data: MutationInput) -> Plan:
        """Build (or reuse, for the same arguments within PLAN_TTL) the plan of a mutation."""
        if op.planner is None:  # pragma: no cover - registry invariant
            raise InvalidInput(f"{op.name} is not a mutation")
        key = fingerprint(op, data)
        now = time.monotonic()
        self._plans = {k: v for k, v in self._plans.items() if now - v[0] < PLAN_TTL}
        if key in self._plans:
            return self._plans[key][1]
        self.tk.check_provider_allowed(getattr(data, "provider", None) or op.provider)
        plan = await op.planner(self.tk, data)
        expires_in = getattr(data, "expires_in", None)
        if expires_in:
            plan.expires_at = (datetime.now(UTC) + parse_duration(expires_in)).isoformat(timespec="seconds")
        violation = self.policy_violation(plan, op)
        if violation:
            plan.warnings.append(f"Refused by policy {violation}")
        self._plans[key] = (now, plan)
        return plan

    async def preview(self, op: Operation, args: dict[str, Any]) -> Plan | None:
        """The plan a confirmation should show, or None when the call will not ask at all
        (invalid input, dry run, policy refusal, replayed key, nothing to do): the run then says why."""
        try:
            data = op.parse(args)
            if data.dry_run or self._replay_row(data) is not None:
                return None
            plan = await self.plan(op, data)
        except GpuToolsError:
            return None
        if self.policy_violation(plan, op) or self._nothing_to_do(plan):
            return None
        return plan

    @staticmethod
    def _nothing_to_do(plan: Plan) -> bool:
        return plan._request is None and not plan.steps

    def _replay_row(self, data: Any) -> Any:
        key = getattr(data, "idempotency_key", None)
        return self.tk.journal.find_key(key) if key else None

    # ---- running ------------------------------------------------------------------------------
    async def run(self, op: Operation, data: MutationInput, confirmer: Confirmer) -> MutationResult:
        sandbox = self.tk.settings.sandbox
        row = self._replay_row(data)
        if row is not None:
            if row["outcome"] != "ok":
                raise ConfirmationRefused(
                    f"an earlier call with idempotency_key {row['idempotency_key']!r} was sent but its outcome "
                    "is unknown; nothing was sent again.",
                    provider=row["provider"],
                    hint="Check list_resources and history before retrying with a new key.",
                )
            stored = self.tk.journal.result_of(row["id"]) or {}
            return MutationResult.model_validate({**stored, "outcome": "replayed", "sandbox": sandbox})

        plan = await self.plan(op, data)
        if data.dry_run:
            return MutationResult(outcome="dry_run", plan=plan, sandbox=sandbox)
        if self._nothing_to_do(plan):
            return MutationResult(outcome="done", plan=plan, detail={"steps": []}, sandbox=sandbox)

        key = getattr(data, "idempotency_key", None)
        violation = self.policy_violation(plan, op)
        if violation:
            self.tk.journal.record(
                plan, op.effect, "refused", error=f"policy {violation}", idempotency_key=key
            )
            raise PolicyRefused(f"refused by policy {violation} Nothing was sent.", provider=plan.provider)

        try:
            confirmed = await confirmer.confirm(plan)
        except ConfirmationRefused as exc:
            self.tk.journal.record(plan, op.effect, "refused", error=exc.message, idempotency_key=key)
            raise
        if not confirmed:
            self.tk.journal.record(plan, op.effect, "refused", error="not confirmed", idempotency_key=key)
            raise ConfirmationRefused(
                f"not confirmed: {plan.action} Nothing was sent.", provider=plan.provider
            )

        self._plans.clear()  # a sent plan is never reused
        if plan.steps:
            return await self._send_steps(plan)
        return await self._send(plan, op.effect, key)

    async def _send(self, plan: Plan, effect: str, key: str | None = None) -> MutationResult:
        """Journal the intent, send the one request, journal the outcome."""
        request, finish = plan._request, plan._finish
        assert request is not None and finish is not None, "planners must attach the request"
        sandbox = self.tk.settings.sandbox
        row_id = self.tk.journal.record(
            plan, effect, "unknown", idempotency_key=key, expires_at=plan.expires_at
        )
        adapter = self.tk.adapter(plan.provider)
        try:
            answer = await adapter.http.request(
                request.method, request.path, json_body=request.json_body, params=request.params
            )
            outcome = await finish(answer)
        except ProviderError as exc:
            self.tk.journal.finish(row_id, "failed", error=str(exc))
            raise
        # Anything else (cancellation, a crash) leaves the row 'unknown' on purpose.
        result = MutationResult(outcome="done", plan=plan, journal_id=row_id, sandbox=sandbox)
        if isinstance(outcome, Resource):
            outcome.sandbox = sandbox
            result.resource = outcome
        elif isinstance(outcome, BaseModel):
            result.detail = adapter.mask(outcome.model_dump(mode="json", exclude={"sandbox"}))
        elif outcome is not None:
            result.detail = adapter.mask(outcome)
        self.tk.journal.finish(
            row_id,
            "ok",
            resource_id=result.resource.resource_id
            if result.resource
            else (None if effect == "create" else plan.target),
            result=result.model_dump(mode="json", exclude={"outcome", "sandbox"}),
            kind=result.resource.kind if result.resource else None,
        )
        return result

    async def _send_steps(self, plan: Plan) -> MutationResult:
        """Send each step as its own journaled request; one failing step does not stop the others."""
        done: list[dict[str, Any]] = []
        for step in plan.steps:
            try:
                result = await self._send(step, EFFECT_OF_STEP.get(step.operation, "update"))
                done.append(
                    {
                        "target": step.target,
                        "provider": step.provider,
                        "outcome": "ok",
                        "journal_id": result.journal_id,
                    }
                )
            except GpuToolsError as exc:
                done.append(
                    {"target": step.target, "provider": step.provider, "outcome": "failed", "error": str(exc)}
                )
        return MutationResult(
            outcome="done", plan=plan, detail={"steps": done}, sandbox=self.tk.settings.sandbox
        )
